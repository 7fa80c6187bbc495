#pragma once
// The chain's access-control steps, in the order they run: the bearer token, the route's roles,
// the CSRF token of a state-changing route. Each reads only the route's policy and the request;
// none touches storage. Each counts and logs its refusals by reason (never the token).
#include <optional>

#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "http/route.hpp"
#include "kit/metrics.hpp"

namespace billing {

// Verifies the bearer token of a route that needs one: 401 (with WWW-Authenticate: Bearer)
// without a valid one; the caller's identity otherwise.
class Authenticate {
 public:
  explicit Authenticate(const JwtCodec& jwt) : jwt_(jwt) {}
  std::optional<Response> before(Call& call) const;
  const CounterFamily<AuthFailure>& failures() const { return failures_; }

 private:
  const JwtCodec& jwt_;
  mutable CounterFamily<AuthFailure> failures_{
      "billing_auth_failures_total",
      "Requests refused 401 for their bearer token, by reason",
      {"reason"}};
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
  const CounterFamily<CsrfFailure>& failures() const { return failures_; }

 private:
  const CsrfTokens& csrf_;
  mutable CounterFamily<CsrfFailure> failures_{
      "billing_csrf_failures_total",
      "Requests refused 403 for their X-CSRF-Token, by reason",
      {"reason"}};
};

}  // namespace billing
