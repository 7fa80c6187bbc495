#pragma once
// CSRF tokens: "<subject b64>.<expiry>.<nonce>.<hmac>", signed with CSRF_SECRET_KEY and bound to
// the caller's `sub`, so a token lifted from one user is worthless to another.
#include <chrono>
#include <string>
#include <string_view>

#include "kit/clock.hpp"
#include "kit/crypto.hpp"

namespace billing {

class CsrfTokens {
 public:
  CsrfTokens(std::string_view secret, const Clock& clock, std::chrono::seconds lifetime)
      : hmac_(secret), clock_(clock), lifetime_(lifetime) {}

  struct Issued {
    std::string token;
    TimePoint expires_at;
  };
  Issued issue(std::string_view subject) const;
  bool valid(std::string_view token, std::string_view subject) const;

 private:
  std::string signature(std::string_view payload) const;

  HmacSha256 hmac_;
  const Clock& clock_;
  std::chrono::seconds lifetime_;
};

}  // namespace billing
