#pragma once
#include <algorithm>
#include <string>
#include <string_view>

namespace billing {

// No control characters (NUL among them, which PostgreSQL's text parameters would cut at).
inline bool free_of_control_characters(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. What a
// client percent-encodes in a URL can be any bytes; PostgreSQL refuses text that is not this, and
// a JSON answer echoing it would not be JSON.
bool valid_utf8(std::string_view text);

// An id as this service takes one from a client or from Stripe: 1-128 bytes of UTF-8 without
// control characters.
inline bool plausible_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && free_of_control_characters(id) && valid_utf8(id);
}

// "http://host:port", an IPv6 address in brackets (RFC 3986 3.2.2), as a browser or curl takes it.
std::string http_url(std::string_view host, unsigned short port);

}  // namespace billing
