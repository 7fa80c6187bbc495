#pragma once
// Thin wrappers over OpenSSL: HMAC-SHA256, constant-time comparison, base64url, random ids.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billing {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest hmac_sha256(std::string_view key, std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);
std::string random_hex(std::size_t bytes);  // bytes of entropy, printed as 2*bytes hex digits

inline std::string_view as_chars(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace billing
