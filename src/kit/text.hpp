#pragma once
#include <algorithm>
#include <string_view>

namespace billing {

// No control characters (NUL among them, which PostgreSQL's text parameters would cut at).
inline bool free_of_control_characters(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace billing
