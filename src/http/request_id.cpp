#include "http/request_id.hpp"

#include <algorithm>
#include <cstdint>
#include <random>

namespace billing {
namespace {

constexpr std::string_view kHeader = "X-Request-Id";

// splitmix64: a fast generator with a random seed per thread; ids need to be unique, not secret.
std::uint64_t next_random() {
  thread_local std::uint64_t state = std::random_device{}() * 0x9e3779b97f4a7c15ULL ^
                                     (std::uint64_t{std::random_device{}()} << 32);
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

bool acceptable_request_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxRequestIdLength &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string new_request_id() {
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(16, '0');
  auto bits = next_random();
  for (char& c : id) {
    c = hex[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

std::optional<Response> RequestIds::before(Call& call) const {
  const auto given = call.request.header(kHeader);
  call.request_id = acceptable_request_id(given) ? std::string(given) : new_request_id();
  return std::nullopt;
}

void RequestIds::after(const Call& call, Response& response) const {
  response.with_header(kHeader, call.request_id);
}

}  // namespace billing
