#pragma once
// The chain's access-control steps, in the order they run: the bearer token, the route's roles,
// the CSRF token of a state-changing route. Each reads only the route's policy and the request;
// none touches storage.
#include <optional>

#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "http/route.hpp"

namespace billing {

// Verifies the bearer token of a route that needs one: 401 (with WWW-Authenticate: Bearer)
// without a valid one; the caller's identity otherwise.
class Authenticate {
 public:
  explicit Authenticate(const JwtCodec& jwt) : jwt_(jwt) {}
  std::optional<Response> before(Call& call) const;

 private:
  const JwtCodec& jwt_;
};

// 403 with the route's denial text for a role the route does not admit.
struct AuthorizeRole {
  std::optional<Response> before(Call& call) const;
};

// 403 "Invalid CSRF token" on a state-changing route without a valid X-CSRF-Token bound to the
// caller.
class VerifyCsrf {
 public:
  explicit VerifyCsrf(const CsrfTokens& csrf) : csrf_(csrf) {}
  std::optional<Response> before(Call& call) const;

 private:
  const CsrfTokens& csrf_;
};

}  // namespace billing
