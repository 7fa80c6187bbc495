#pragma once
// The outermost step: every request gets an id, the caller's X-Request-Id when it is short and
// printable (so a proxy's or client's id follows the request through our logs), else a fresh
// one; it goes back as X-Request-Id on every response, errors included.
#include <optional>
#include <string>
#include <string_view>

#include "http/route.hpp"

namespace billing {

inline constexpr std::size_t kMaxRequestIdLength = 64;

// 1 to 64 bytes of visible ASCII (no spaces, no control characters).
bool acceptable_request_id(std::string_view id);
// 16 hex digits from a per-thread generator: no lock, no system call.
std::string new_request_id();

struct RequestIds {
  std::optional<Response> before(Call& call) const;
  void after(const Call& call, Response& response) const;
};

}  // namespace billing
