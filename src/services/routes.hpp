#pragma once
#include "http/route.hpp"
#include "kit/clock.hpp"
#include "plans/catalog.hpp"
#include "storage/db.hpp"

namespace billing {

// GET /billing/services, POST /billing/services/select.
void add_service_routes(Router& router, Db& db, const Catalog& catalog, const Clock& clock);

}  // namespace billing
