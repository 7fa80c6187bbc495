#include "payments/webhook_signature.hpp"

#include <charconv>
#include <cstdint>
#include <stdexcept>

namespace billing {
namespace {

constexpr std::size_t kMaxSignatures = 8;  // more v1 entries than a rotation needs: refused

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

WebhookSignature::WebhookSignature(std::string_view secret) {
  if (!secret.empty()) hmac_.emplace(secret);
}

std::string WebhookSignature::signature(std::string_view timestamp,
                                        std::string_view payload) const {
  const auto digest = (*hmac_)({timestamp, ".", payload});
  return hex_encode(as_chars(digest));
}

bool WebhookSignature::verify(std::string_view header, std::string_view payload,
                              TimePoint now) const {
  if (!hmac_) return false;
  std::string_view timestamp;
  std::string_view candidates[kMaxSignatures];
  std::size_t count = 0;
  while (!header.empty()) {
    const auto comma = std::min(header.find(','), header.size());
    const auto item = header.substr(0, comma);
    header.remove_prefix(std::min(comma + 1, header.size()));
    const auto equals = item.find('=');
    if (equals == std::string_view::npos) continue;
    const auto key = item.substr(0, equals);
    const auto value = item.substr(equals + 1);
    if (key == "t" && timestamp.empty()) {
      timestamp = value;
    } else if (key == "v1") {
      if (count == kMaxSignatures) return false;
      candidates[count++] = value;
    }
  }
  std::int64_t sent = 0;
  const auto [end, ec] =
      std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), sent);
  if (timestamp.empty() || ec != std::errc{} || end != timestamp.data() + timestamp.size())
    return false;
  // Too old: a delivery replayed. One from the future is taken, as Stripe's own libraries take
  // it: only Stripe can sign, and refusing it would refuse every event while this machine's
  // clock runs behind Stripe's.
  if (sent < unix_seconds(now) - kTolerance.count()) return false;

  const std::string expected = signature(timestamp, payload);
  bool matched = false;
  for (std::size_t i = 0; i < count; ++i) matched |= constant_time_equal(candidates[i], expected);
  return matched;
}

std::string WebhookSignature::sign(std::string_view payload, TimePoint at) const {
  if (!hmac_) throw std::logic_error("no webhook secret to sign with");
  const auto t = std::to_string(unix_seconds(at));
  return "t=" + t + ",v1=" + signature(t, payload);
}

}  // namespace billing
