#pragma once
// How a plan choice reaches the payment provider when a subscription pays for the plan. The
// payments domain implements it (plans does not know payments; app/ wires the two).
#include <boost/asio/awaitable.hpp>

#include "plans/types.hpp"

namespace billing {

// What a subscription is priced at: a plan type billed each cycle.
struct SubscriptionPrice {
  PlanType plan_type = PlanType::lite;
  BillingCycle cycle = BillingCycle::monthly;
  friend bool operator==(const SubscriptionPrice&, const SubscriptionPrice&) = default;
};

class SubscriptionChanges {
 public:
  virtual ~SubscriptionChanges() = default;
  // Asks the provider to move `plan`'s subscription to `price`, prorated. The plan follows when
  // the provider confirms (customer.subscription.updated).
  virtual boost::asio::awaitable<void> change_plan(Plan plan, SubscriptionPrice price) = 0;
};

}  // namespace billing
