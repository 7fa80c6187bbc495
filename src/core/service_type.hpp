#pragma once
// The AI services an agent can use (the seed's ServiceType), in the seed's order.
#include <array>
#include <string_view>

#include "kit/enums.hpp"

namespace billing {

enum class ServiceType {
  checkpoint,
  primary,
  checklist,
  medication,
  nutrition,
  privacy,
  summary,
  human_escalation,
};

template <>
struct EnumNames<ServiceType> {
  static constexpr std::array<std::string_view, 8> names{
      "checkpoint", "primary", "checklist", "medication",
      "nutrition",  "privacy", "summary",   "human_escalation"};
};

}  // namespace billing
