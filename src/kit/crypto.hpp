#pragma once
// Thin wrappers over OpenSSL: SHA-256, HMAC-SHA256, constant-time comparison, base64url, random
// ids.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX

namespace billing {

using Sha256Digest = std::array<unsigned char, 32>;

// HMAC-SHA256 with one key, prepared once: OpenSSL 3's one-shot HMAC() looks the algorithm up
// (under a global lock) and hashes the key again on every call.
class HmacSha256 {
 public:
  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  Sha256Digest operator()(std::string_view data) const;  // safe to call from any thread
  // The MAC of the parts one after the other, as if concatenated (without copying them).
  Sha256Digest operator()(std::initializer_list<std::string_view> parts) const;

 private:
  evp_mac_ctx_st* prepared_;
};

Sha256Digest hmac_sha256(std::string_view key, std::string_view data);
Sha256Digest sha256(std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);
std::string hex_encode(std::string_view bytes);  // lower case, two digits a byte
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);
std::string random_hex(std::size_t bytes);  // bytes of entropy, printed as 2*bytes hex digits

inline std::string_view as_chars(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace billing
