#pragma once
// Stripe's webhook signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where
// each v1 is the HMAC-SHA256, keyed with the endpoint's signing secret, of "<t>.<raw body>".
// Checked on the raw bytes before anything parses them; the local provider signs its events the
// same way.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "kit/clock.hpp"
#include "kit/crypto.hpp"

namespace billing {

class WebhookSignature {
 public:
  // How far `t` may be from now, either way: an old delivery replayed is refused.
  static constexpr std::chrono::seconds kTolerance{300};

  explicit WebhookSignature(std::string_view secret);  // an empty secret verifies nothing

  // Whether some v1 of `header` signs `payload` with our secret, at a `t` within the tolerance.
  // Constant-time in the signature's bytes.
  bool verify(std::string_view header, std::string_view payload, TimePoint now) const;
  // The header for `payload` sent at `at` (the local provider's deliveries, and tests).
  std::string sign(std::string_view payload, TimePoint at) const;

 private:
  std::string signature(std::string_view timestamp, std::string_view payload) const;

  std::optional<HmacSha256> hmac_;
};

}  // namespace billing
