#pragma once
#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"
#include "plans/catalog.hpp"
#include "services/metrics.hpp"

namespace billing {

// GET /billing/services, POST /billing/services/select.
void add_service_routes(Router& router, Db& db, const Catalog& catalog, const Clock& clock,
                        ServiceMetrics& metrics);

}  // namespace billing
