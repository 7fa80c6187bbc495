#pragma once
// How a plan choice reaches the payment provider when a subscription pays for the plan. The
// payments domain implements it (plans does not know payments; app/ wires the two).
#include <boost/asio/awaitable.hpp>

#include "plans/types.hpp"

namespace billing {

class SubscriptionChanges {
 public:
  virtual ~SubscriptionChanges() = default;
  // Asks the provider to move `plan`'s subscription to `plan_type`, prorated. The plan follows
  // when the provider confirms (customer.subscription.updated).
  virtual boost::asio::awaitable<void> change_plan(Plan plan, PlanType plan_type) = 0;
};

}  // namespace billing
