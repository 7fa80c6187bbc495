#pragma once
// Choosing a plan.
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "core/identity.hpp"
#include "kit/api_error.hpp"
#include "plans/catalog.hpp"
#include "plans/subscription_changes.hpp"

namespace billing {

struct PlanSelection {
  PlanType plan_type;
  std::string id;                  // the hospital or individual
  std::optional<EntityKind> role;  // admins may say which kind `id` is; otherwise it is looked up
  // The cycle the plan is to be billed at; none: as it is, or as chosen while pending.
  std::optional<BillingCycle> billing_cycle;
};

struct PlanChoice {
  Plan plan;
  // What the subscription that pays for an active plan should now be priced at, after an owner's
  // choice: the type and cycle chosen, also the plan's own (a pending choice the provider may
  // have priced already is withdrawn so); none without such a subscription.
  std::optional<SubscriptionPrice> subscription_price;
  // The plan as it was before a choice that was sent to the provider saved it: a refusal that
  // takes the choice back leaves the plan as it was, its updated_at too.
  std::optional<Plan> replaced;
};

// POST /billing/plan/select, inside one write unit. An admin's choice is active at once (a
// manual contract, paid by no subscription); a hospital's or individual's own choice waits for
// payment (inactive), or, on an active plan, for the provider to confirm the subscription's new
// price (pending: the type, the cycle, or both). A cycle chosen for a plan that is not active
// (or by an admin) is the plan's billing cycle from then on; the checkout that pays for it says
// its own.
PlanChoice select_plan(Tx& tx, const Catalog& catalog, const Identity& caller,
                       const PlanSelection& selection, TimePoint now);

// Whether a subscription pays for the plan: it holds one and is active, or suspended while the
// provider retries the unpaid invoice (a cancelled plan's subscription has ended). An admin's
// choice (a manual contract) is then refused: the subscription's next event would undo it, and
// the owner would go on being charged for what they chose.
bool subscription_pays(const Plan& plan);
// A suspended plan whose subscription is still there: the provider retries its unpaid invoice
// (or its collection is paused), and paying it (or resuming) reactivates the plan. Until then its
// owner can neither choose another plan (it would no longer be the suspended one the payment
// reactivates) nor buy a second subscription (the first would still be charged): both are
// refused with this error.
bool suspended_by_its_subscription(const Plan& plan);
ApiError settle_subscription_first();

// What the subscription that pays for `plan` should be priced at: its owner's newest choice (the
// pending type and cycle, else the plan's own); none unless a subscription pays for an active
// plan.
std::optional<SubscriptionPrice> chosen_subscription_price(const Plan& plan);

// After select_plan: asks the provider to price the subscription as `choice` says. Two choices
// made at nearly the same time may reach the provider in the other order, so the plan is read
// again after each call and the provider asked again while the newest choice says otherwise.
// When the provider refuses the choice (its error is rethrown), the pending choice it recorded is
// taken back, unless a newer one replaced it: the owner was told it failed, and nothing would
// ever apply it. A choice priced before stays with the provider, and its event still applies it.
boost::asio::awaitable<void> price_subscription(Db& db, SubscriptionChanges& subscriptions,
                                                PlanChoice choice);

}  // namespace billing
