#include "auth/csrf.hpp"

#include <charconv>

#include <fmt/format.h>

#include "kit/crypto.hpp"

namespace billing {

std::string CsrfTokens::signature(std::string_view payload) const {
  return base64url_encode(as_chars(hmac_(payload)));
}

CsrfTokens::Issued CsrfTokens::issue(std::string_view subject) const {
  const auto expires_at = std::chrono::floor<std::chrono::seconds>(clock_.now() + lifetime_);
  const std::string payload = fmt::format("{}.{}.{}", base64url_encode(subject),
                                          expires_at.time_since_epoch().count(), random_hex(8));
  return {payload + "." + signature(payload), expires_at};
}

std::optional<CsrfFailure> CsrfTokens::refusal(std::string_view token,
                                               std::string_view subject) const {
  if (token.empty()) return CsrfFailure::missing;
  const auto last_dot = token.rfind('.');
  if (last_dot == std::string_view::npos) return CsrfFailure::malformed;
  const auto payload = token.substr(0, last_dot);
  if (!constant_time_equal(token.substr(last_dot + 1), signature(payload)))
    return CsrfFailure::signature;

  const auto subject_end = payload.find('.');
  const auto expiry_end = payload.find('.', subject_end + 1);
  if (subject_end == std::string_view::npos || expiry_end == std::string_view::npos)
    return CsrfFailure::malformed;
  if (payload.substr(0, subject_end) != base64url_encode(subject)) return CsrfFailure::other_user;

  const auto expiry_text = payload.substr(subject_end + 1, expiry_end - subject_end - 1);
  std::int64_t expiry = 0;
  const auto [end, ec] =
      std::from_chars(expiry_text.data(), expiry_text.data() + expiry_text.size(), expiry);
  if (ec != std::errc{} || end != expiry_text.data() + expiry_text.size())
    return CsrfFailure::malformed;
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch());
  if (now.count() >= expiry) return CsrfFailure::expired;
  return std::nullopt;
}

}  // namespace billing
