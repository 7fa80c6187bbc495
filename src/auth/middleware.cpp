#include "auth/middleware.hpp"

#include <algorithm>
#include <cctype>

#include "http/errors.hpp"

namespace billing {
namespace {

// The token of an `Authorization: Bearer <token>` header (the scheme in any case), or "".
std::string_view bearer_token(std::string_view header) {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size() || !std::equal(scheme.begin(), scheme.end(), header.begin(),
                                                    [](unsigned char a, unsigned char b) {
                                                      return std::tolower(a) == std::tolower(b);
                                                    }))
    return {};
  return header.substr(scheme.size());
}

}  // namespace

std::optional<Response> Authenticate::before(Call& call) const {
  if (!call.policy().needs_token()) return std::nullopt;
  try {
    const auto token = bearer_token(call.request.header("Authorization"));
    if (token.empty()) throw ApiError(401, "Not authenticated");
    call.identity = jwt_.verify(token);
    return std::nullopt;
  } catch (const ApiError& error) {
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
  if (call.policy().needs_csrf() &&
      !csrf_.valid(call.request.header("X-CSRF-Token"), call.caller().subject))
    throw ApiError(403, "Invalid CSRF token");
  return std::nullopt;
}

}  // namespace billing
