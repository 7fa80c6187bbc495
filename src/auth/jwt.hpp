#pragma once
// HS256 JSON Web Tokens: verification for every request, signing for `billing token` and --dev.
#include <string>
#include <string_view>

#include "core/identity.hpp"
#include "kit/clock.hpp"
#include "kit/crypto.hpp"

namespace billing {

class JwtCodec {
 public:
  JwtCodec(std::string_view secret, const Clock& clock) : hmac_(secret), clock_(clock) {}

  // The caller's identity, or ApiError 401. Only HS256 with a valid signature, an `exp` in the
  // future, a known role and the claims that role needs is accepted.
  Identity verify(std::string_view token) const;
  std::string sign(const Identity& identity, TimePoint expires_at) const;

 private:
  HmacSha256 hmac_;
  const Clock& clock_;
};

}  // namespace billing
