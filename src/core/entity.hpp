#pragma once
// Who can own a plan, and a reference to one of them.
#include <array>
#include <string>
#include <string_view>

#include "kit/enums.hpp"

namespace billing {

enum class EntityKind { hospital, individual };

template <>
struct EnumNames<EntityKind> {
  static constexpr std::array<std::string_view, 2> names{"hospital", "individual"};
};

struct EntityRef {
  EntityKind kind = EntityKind::hospital;
  std::string id;
  friend bool operator==(const EntityRef&, const EntityRef&) = default;
};

}  // namespace billing
