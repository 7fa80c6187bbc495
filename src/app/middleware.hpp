#pragma once
// The middleware chain, composed in this one place: every request passes through these steps,
// outermost first, then its route's handler. The steps read the route's policy; a route cannot
// leave one out, and leaving one out here does not compile (App hands each to the chain by type).
#include <optional>

#include "auth/middleware.hpp"
#include "entities/enrollment.hpp"
#include "http/access_log.hpp"
#include "http/chain.hpp"
#include "http/request_id.hpp"
#include "http/route_metrics.hpp"

namespace billing {

// The plan rate limit's place in the chain: after the caller is known and admitted, before any
// storage is touched. The operations issue fills it; until then every call passes.
struct PlanRateLimit {
  std::optional<Response> before(Call&) const { return std::nullopt; }
};

using Middleware = Chain<RequestIds,     // X-Request-Id, accepted or made, on every response
                         AccessLog,      // one JSON line per request
                         RouteMetrics,   // counts and latencies per route and status
                         Authenticate,   // the bearer token (401)
                         AuthorizeRole,  // the route's roles (403)
                         VerifyCsrf,     // X-CSRF-Token on state-changing routes (403)
                         PlanRateLimit,  // 429 (operations issue)
                         Enrollment>;    // the caller's entity row, created on first sight

}  // namespace billing
