#include "kit/crypto.hpp"

#include <memory>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

namespace billing {

HmacSha256::HmacSha256(std::string_view key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  prepared_ = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  EVP_MAC_free(mac);  // the context keeps its own reference
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
  if (!prepared_ || !EVP_MAC_init(prepared_, reinterpret_cast<const unsigned char*>(key.data()),
                                  key.size(), params)) {
    EVP_MAC_CTX_free(prepared_);
    throw std::runtime_error("HMAC-SHA256 unavailable");
  }
}

HmacSha256::~HmacSha256() {
  EVP_MAC_CTX_free(prepared_);
}

Sha256Digest HmacSha256::operator()(std::string_view data) const {
  return (*this)({data});
}

Sha256Digest HmacSha256::operator()(std::initializer_list<std::string_view> parts) const {
  // A copy of the keyed context: the prepared one is never changed, so threads may share it.
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_dup(prepared_),
                                                                &EVP_MAC_CTX_free);
  bool ok = ctx != nullptr;
  for (std::string_view part : parts)
    ok = ok && EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  Sha256Digest out{};
  std::size_t len = 0;
  if (!ok || !EVP_MAC_final(ctx.get(), out.data(), &len, out.size()))
    throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data) {
  return HmacSha256(key)(data);
}

Sha256Digest sha256(std::string_view data) {
  Sha256Digest out{};
  if (!EVP_Digest(data.data(), data.size(), out.data(), nullptr, EVP_sha256(), nullptr))
    throw std::runtime_error("SHA-256 failed");
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += digits[byte >> 4];
    out += digits[byte & 0xf];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string padded;
  padded.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;  // url alphabet, no padding
    padded.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  const std::size_t pad = (4 - padded.size() % 4) % 4;
  padded.append(pad, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts padding as zero bytes
  // One spelling per byte string: the bits a last character has beyond the bytes must be zero,
  // or one signature would have up to four spellings that all pass.
  if (base64url_encode(out) != text) return std::nullopt;
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return hex_encode(raw);
}

}  // namespace billing
