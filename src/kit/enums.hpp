#pragma once
// Enums with one table of their wire names each: `template <> struct EnumNames<E>`.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace billing {

template <class E>
struct EnumNames;  // specialise with `static constexpr std::array<std::string_view, N> names`

template <class E>
constexpr std::string_view name_of(E value) {
  return EnumNames<E>::names[static_cast<std::size_t>(value)];
}

template <class E>
constexpr std::optional<E> parse_enum(std::string_view text) {
  const auto& names = EnumNames<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<E>(i);
  return std::nullopt;
}

// "'a', 'b' or 'c'", as pydantic lists the permitted values of an enum.
template <class E>
std::string quoted_choices() {
  const auto& names = EnumNames<E>::names;
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += "'";
    out += names[i];
    out += "'";
  }
  return out;
}

}  // namespace billing
