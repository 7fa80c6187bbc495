#pragma once
// A plan and its history, as stored and as the domain rules see them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/entity.hpp"
#include "core/plan_kinds.hpp"
#include "core/service_type.hpp"
#include "kit/clock.hpp"

namespace billing {

struct Plan {
  std::string id;
  EntityRef owner;
  PlanType plan_type = PlanType::lite;
  PlanStatus status = PlanStatus::inactive;
  int max_agents = 0;
  std::vector<ServiceType> selected_services;
  std::optional<std::string> stripe_customer_id;
  std::optional<std::string> stripe_subscription_id;
  std::optional<BillingCycle> billing_cycle;  // of the paid subscription, if any
  // A plan chosen while another is active and not yet paid for: the active one stays until
  // checkout for this one completes.
  std::optional<PlanType> pending_plan_type;
  // A cycle chosen for the subscription that pays for the plan, until the provider confirms it.
  std::optional<BillingCycle> pending_billing_cycle;
  bool cancel_at_period_end = false;
  // The subscription's collection is paused: suspended until it is resumed, whatever is paid.
  bool collection_paused = false;
  // Stripe's `created` (Unix seconds) of the newest event applied to this plan: an older event
  // arriving late must not move the plan back.
  std::optional<std::int64_t> last_event_created;
  TimePoint created_at;
  TimePoint updated_at;
  friend bool operator==(const Plan&, const Plan&) = default;
};

// What is known of a subscription of an owner other than the one their plan follows (a second
// one paid for while the first already paid, one the plan stopped following, one told of before
// its checkout's completion): the plan goes on with the newest that has not ended when its own
// ends.
struct OtherSubscription {
  std::string id;
  EntityRef owner;
  std::string status;  // Stripe's, as the newest event about it said
  PlanType plan_type = PlanType::lite;
  BillingCycle cycle = BillingCycle::monthly;
  std::int64_t created = 0;             // Stripe's `created` of the first event that told of it
  std::int64_t last_event_created = 0;  // and of the newest
  friend bool operator==(const OtherSubscription&, const OtherSubscription&) = default;
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
