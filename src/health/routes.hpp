#pragma once
#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"

namespace billing {

// GET /billing/health: healthy only after a real database round trip.
void add_health_routes(Router& router, Db& db, const Clock& clock);

}  // namespace billing
