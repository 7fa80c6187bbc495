#pragma once
// How domain values are spelled in the database (the same in both backends).
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/entity.hpp"
#include "core/service_type.hpp"

namespace billing {

std::string encode_services(const std::vector<ServiceType>& services);  // "privacy,checklist"
std::vector<ServiceType> decode_services(std::string_view text);        // throws on unknown

// Parses a stored enum name; a bad value means a corrupt row, which is an internal error.
template <class E>
E decode_enum(std::string_view text) {
  if (auto value = parse_enum<E>(text)) return *value;
  throw std::runtime_error("unexpected value in database: " + std::string(text));
}

// Hospitals and individuals live in tables of their own, and plans and history rows name their
// owner in a column of each kind, so statements about an owner come in pairs: {hospital,
// individual}.
template <class T>
const T& for_kind(const T (&pair)[2], EntityKind kind) {
  return pair[static_cast<std::size_t>(kind)];
}

}  // namespace billing
