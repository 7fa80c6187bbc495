#pragma once
#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"

namespace billing {

// GET /billing/health: healthy only after a real database round trip, and while writes work as
// far as the service knows (core/db.hpp: Db::storage_fault, Db::check_storage).
void add_health_routes(Router& router, Db& db, const Clock& clock);

}  // namespace billing
