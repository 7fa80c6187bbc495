#pragma once
// How domain values are spelled in the database (the same in both backends).
#include <string>
#include <string_view>
#include <vector>

#include "plans/types.hpp"

namespace billing {

std::string encode_services(const std::vector<ServiceType>& services);  // "privacy,checklist"
std::vector<ServiceType> decode_services(std::string_view text);        // throws on unknown

// Parses a stored enum name; a bad value means a corrupt row, which is an internal error.
template <class E>
E decode_enum(std::string_view text) {
  if (auto value = parse_enum<E>(text)) return *value;
  throw std::runtime_error("unexpected value in database: " + std::string(text));
}

}  // namespace billing
