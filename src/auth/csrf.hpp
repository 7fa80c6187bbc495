#pragma once
// CSRF tokens: "<subject b64>.<expiry>.<nonce>.<hmac>", signed with CSRF_SECRET_KEY and bound to
// the caller's `sub`, so a token lifted from one user is worthless to another.
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "kit/clock.hpp"
#include "kit/crypto.hpp"
#include "kit/enums.hpp"

namespace billing {

// Why a CSRF token was refused: billing_csrf_failures_total's `reason`, and the log's.
enum class CsrfFailure { missing, malformed, signature, other_user, expired };
template <>
struct EnumNames<CsrfFailure> {
  static constexpr std::array<std::string_view, 5> names{"missing", "malformed", "signature",
                                                         "other_user", "expired"};
};

class CsrfTokens {
 public:
  CsrfTokens(std::string_view secret, const Clock& clock, std::chrono::seconds lifetime)
      : hmac_(secret), clock_(clock), lifetime_(lifetime) {}

  struct Issued {
    std::string token;
    TimePoint expires_at;
  };
  Issued issue(std::string_view subject) const;
  // Nothing if `token` is valid for `subject`, else why not.
  std::optional<CsrfFailure> refusal(std::string_view token, std::string_view subject) const;

 private:
  std::string signature(std::string_view payload) const;

  HmacSha256 hmac_;
  const Clock& clock_;
  std::chrono::seconds lifetime_;
};

}  // namespace billing
