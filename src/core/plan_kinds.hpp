#pragma once
// The kinds of plan and the states a plan goes through.
#include <array>
#include <string_view>

#include "kit/enums.hpp"

namespace billing {

enum class PlanType { lite, pro, hobby, basic };
enum class PlanStatus { active, inactive, suspended, cancelled, expired };
enum class BillingCycle { monthly, yearly };

template <>
struct EnumNames<PlanType> {
  static constexpr std::array<std::string_view, 4> names{"lite", "pro", "hobby", "basic"};
};
template <>
struct EnumNames<PlanStatus> {
  static constexpr std::array<std::string_view, 5> names{"active", "inactive", "suspended",
                                                         "cancelled", "expired"};
};
template <>
struct EnumNames<BillingCycle> {
  static constexpr std::array<std::string_view, 2> names{"monthly", "yearly"};
};

}  // namespace billing
