#include "http/response.hpp"

#include <algorithm>
#include <stdexcept>

namespace billing {

Response& Response::with_header(std::string_view name, std::string value) {
  if (std::any_of(value.begin(), value.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && u != '\t') || u == 0x7f;
      }))
    throw std::invalid_argument("a response header value with a control character");
  headers.push_back({name, std::move(value)});
  return *this;
}

}  // namespace billing
