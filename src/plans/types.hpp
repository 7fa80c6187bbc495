#pragma once
// A plan and its history, as stored and as the domain rules see them.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kit/clock.hpp"
#include "kit/enums.hpp"
#include "services/service_type.hpp"

namespace billing {

enum class PlanType { lite, pro, hobby, basic };
enum class PlanStatus { active, inactive, suspended, cancelled, expired };
// Who can own a plan.
enum class EntityKind { hospital, individual };

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
struct EnumNames<EntityKind> {
  static constexpr std::array<std::string_view, 2> names{"hospital", "individual"};
};

struct EntityRef {
  EntityKind kind = EntityKind::hospital;
  std::string id;
  friend bool operator==(const EntityRef&, const EntityRef&) = default;
};

struct Plan {
  std::string id;
  EntityRef owner;
  PlanType plan_type = PlanType::lite;
  PlanStatus status = PlanStatus::inactive;
  int max_agents = 0;
  std::vector<ServiceType> selected_services;
  std::optional<std::string> stripe_customer_id;
  std::optional<std::string> stripe_subscription_id;
  TimePoint created_at;
  TimePoint updated_at;
  friend bool operator==(const Plan&, const Plan&) = default;
};

// One row of plan_update_history: who changed what, when, and why.
struct PlanChange {
  std::string plan_id;
  EntityRef owner;
  std::string changed_by;  // the caller's `sub`
  TimePoint changed_at;
  std::optional<PlanType> from_plan_type;
  PlanType to_plan_type = PlanType::lite;
  std::optional<PlanStatus> from_status;
  PlanStatus to_status = PlanStatus::inactive;
  std::vector<ServiceType> from_services;
  std::vector<ServiceType> to_services;
  std::string reason;
  friend bool operator==(const PlanChange&, const PlanChange&) = default;
};

}  // namespace billing
