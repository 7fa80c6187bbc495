#include "auth/middleware.hpp"

#include "http/errors.hpp"
#include "kit/log.hpp"

namespace billing {

std::optional<Response> Authenticate::before(Call& call) const {
  if (!call.policy().needs_token()) return std::nullopt;
  try {
    const auto token = call.request.bearer_token();
    if (token.empty()) throw AuthError(AuthFailure::missing, "Not authenticated");
    call.identity = jwt_.verify(token);
    return std::nullopt;
  } catch (const AuthError& error) {
    failures_.add(error.reason);
    log_event(spdlog::level::warn, "authentication failed", call.request_id,
              {{"reason", name_of(error.reason)}, {"route", call.route->pattern}});
    auto response = error_response(error);
    response.with_header("WWW-Authenticate", "Bearer");  // RFC 6750
    return response;
  }
}

std::optional<Response> AuthorizeRole::before(Call& call) const {
  const Policy& policy = call.policy();
  if (policy.needs_token() && !policy.admits(call.caller().role))
    throw ApiError(403, policy.denial());
  return std::nullopt;
}

std::optional<Response> VerifyCsrf::before(Call& call) const {
  if (!call.policy().needs_csrf()) return std::nullopt;
  const Identity& caller = call.caller();
  if (const auto refusal = csrf_.refusal(call.request.header("X-CSRF-Token"), caller.subject)) {
    failures_.add(*refusal);
    log_event(spdlog::level::warn, "CSRF token refused", call.request_id,
              {{"reason", name_of(*refusal)},
               {"route", call.route->pattern},
               {"role", name_of(caller.role)},
               {"entity", caller.entity_id}});
    throw ApiError(403, "Invalid CSRF token");
  }
  return std::nullopt;
}

}  // namespace billing
