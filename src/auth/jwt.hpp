#pragma once
// HS256 JSON Web Tokens: verification for every request, signing for `billing token` and --dev.
#include <string>
#include <string_view>

#include "core/identity.hpp"
#include "kit/api_error.hpp"
#include "kit/clock.hpp"
#include "kit/crypto.hpp"

namespace billing {

// Why a bearer token was refused: billing_auth_failures_total's `reason`, and the log's.
enum class AuthFailure { missing, malformed, algorithm, signature, expired, not_yet_valid, claims };
template <>
struct EnumNames<AuthFailure> {
  static constexpr std::array<std::string_view, 7> names{
      "missing", "malformed", "algorithm", "signature", "expired", "not_yet_valid", "claims"};
};

// The 401 for a refused token, with the reason (which the client is not told).
struct AuthError : ApiError {
  AuthError(AuthFailure why, std::string_view public_detail)
      : ApiError(401, public_detail), reason(why) {}
  AuthFailure reason;
};

class JwtCodec {
 public:
  JwtCodec(std::string_view secret, const Clock& clock) : hmac_(secret), clock_(clock) {}

  // The caller's identity, or AuthError (401). Only HS256 with a valid signature, an `exp` in the
  // future, a known role and the claims that role needs is accepted.
  Identity verify(std::string_view token) const;
  std::string sign(const Identity& identity, TimePoint expires_at) const;

 private:
  HmacSha256 hmac_;
  const Clock& clock_;
};

}  // namespace billing
