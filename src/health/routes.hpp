#pragma once
#include "http/route.hpp"
#include "kit/clock.hpp"
#include "storage/db.hpp"

namespace billing {

// GET /billing/health: healthy only after a real database round trip.
void add_health_routes(Router& router, Db& db, const Clock& clock);

}  // namespace billing
