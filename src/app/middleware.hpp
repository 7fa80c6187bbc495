#pragma once
// The middleware chain, composed in this one place: every request passes through these steps,
// outermost first, then its route's handler. The steps read the route's policy; a route cannot
// leave one out, and leaving one out here does not compile (App hands each to the chain by type).
#include "auth/middleware.hpp"
#include "entities/enrollment.hpp"
#include "http/access_log.hpp"
#include "http/chain.hpp"
#include "http/request_id.hpp"
#include "http/route_metrics.hpp"
#include "limits/plan_rate_limit.hpp"

namespace billing {

using Middleware = Chain<RequestIds,     // X-Request-Id, accepted or made, on every response
                         AccessLog,      // one JSON line per request
                         RouteMetrics,   // counts and latencies per route and status
                         Authenticate,   // the bearer token (401)
                         AuthorizeRole,  // the route's roles (403)
                         VerifyCsrf,     // X-CSRF-Token on state-changing routes (403)
                         PlanRateLimit,  // 429 over the plan's requests a minute
                         Enrollment>;    // the caller's entity row, created on first sight

}  // namespace billing
