#include "plans/selection.hpp"

#include "entities/ownership.hpp"
#include "entities/repo.hpp"
#include "kit/crypto.hpp"
#include "plans/history.hpp"
#include "plans/repo.hpp"

namespace billing {
PlanChoice select_plan(Tx& tx, const Catalog& catalog, const Identity& caller,
                       const PlanSelection& selection, TimePoint now) {
  auto& entities = tx.get<EntityRepo>();
  auto& plans = tx.get<PlanRepo>();
  const EntityRef owner = resolve_entity(entities, caller, selection.id, selection.role);
  const PlanOffer* offer = catalog.find(owner.kind, selection.plan_type);
  if (!offer) throw ApiError(400, "Invalid plan type");
  entities.entity_exists(owner);  // holds the owner's row until commit: one change at a time

  const auto existing = plans.find_plan(owner);
  const bool owner_choice = caller.role != Role::admin;
  if (existing && !owner_choice && subscription_pays(*existing))
    throw ApiError(
        409,
        "A subscription pays for this plan: its owner changes it with "
        "POST /billing/plan/select, or it ends first (POST /stripe/subscription/cancel)");
  if (existing && owner_choice && suspended_by_its_subscription(*existing))
    throw settle_subscription_first();
  if (existing && existing->status == PlanStatus::active && owner_choice) {
    // An owner's choice never takes an active plan away: it waits as pending until paid for
    // (checkout, or the provider confirming a price change of the subscription). Choosing the
    // active plan again withdraws a pending choice; a choice that names no cycle keeps the one
    // chosen (a change of interval is charged at once: leaving it out must not undo it).
    Plan plan = *existing;
    plan.pending_plan_type = selection.plan_type == existing->plan_type
                                 ? std::nullopt
                                 : std::optional(selection.plan_type);
    if (selection.billing_cycle)
      plan.pending_billing_cycle = selection.billing_cycle == existing->billing_cycle
                                       ? std::nullopt
                                       : selection.billing_cycle;
    if (plan == *existing) return {plan, chosen_subscription_price(plan)};
    plan.updated_at = now;
    plans.save_plan(plan);
    // Every choice asks the provider, which changes nothing when the price is as chosen: a
    // withdrawal must reach it even when the last call to withdraw failed.
    return {plan, chosen_subscription_price(plan), *existing};
  }
  Plan plan = existing ? *existing
                       : Plan{.id = "plan_" + random_hex(12), .owner = owner, .created_at = now};
  const bool same_type = existing && existing->plan_type == selection.plan_type;
  plan.plan_type = selection.plan_type;
  plan.status = owner_choice ? PlanStatus::inactive : PlanStatus::active;
  plan.pending_plan_type.reset();
  plan.pending_billing_cycle.reset();
  if (selection.billing_cycle) plan.billing_cycle = selection.billing_cycle;
  // No subscription pays for the plan from here on (any it held has ended): a later checkout
  // must not be taken for one that still pays, nor a choice sent to the provider for it.
  plan.stripe_subscription_id.reset();
  plan.max_agents = offer->max_agents;
  if (!same_type) plan.selected_services = offer->default_services;

  if (existing && plan == *existing) return {plan};  // nothing changes, nothing to record
  // The history records types, statuses and services: a cycle alone changes none of them.
  Plan as_before_but_cycle = plan;
  if (existing) as_before_but_cycle.billing_cycle = existing->billing_cycle;
  const bool cycle_alone = existing && as_before_but_cycle == *existing;
  plan.updated_at = now;
  plans.save_plan(plan);
  if (!cycle_alone)
    plans.append_history(plan_change(
        existing ? &*existing : nullptr, plan, caller.subject, now,
        owner_choice ? "selected, awaiting payment" : "selected by admin (manual contract)"));
  return {plan};
}

bool subscription_pays(const Plan& plan) {
  return plan.stripe_subscription_id.has_value() &&
         (plan.status == PlanStatus::active || plan.status == PlanStatus::suspended);
}

bool suspended_by_its_subscription(const Plan& plan) {
  return plan.status == PlanStatus::suspended && plan.stripe_subscription_id.has_value();
}

ApiError settle_subscription_first() {
  return ApiError(
      409,
      "The plan is suspended until its subscription is paid or resumed: settle it in the "
      "billing portal (POST /stripe/portal-link) first");
}

std::optional<SubscriptionPrice> chosen_subscription_price(const Plan& plan) {
  if (plan.status != PlanStatus::active || !plan.stripe_subscription_id) return std::nullopt;
  return SubscriptionPrice{
      plan.pending_plan_type.value_or(plan.plan_type),
      plan.pending_billing_cycle.value_or(plan.billing_cycle.value_or(BillingCycle::monthly))};
}

namespace {

// Only a choice the refused request left pending is taken back (a withdrawal leaves none), and
// only while no newer one replaced it: the plan then follows what the provider was last told,
// as its events say.
boost::asio::awaitable<void> take_back_refused_choice(Db& db, const Plan& chosen,
                                                      const std::optional<Plan>& replaced) {
  if (!chosen.pending_plan_type && !chosen.pending_billing_cycle) co_return;
  co_await db.transact([&](Tx& tx) {
    tx.get<EntityRepo>().entity_exists(chosen.owner);  // the owner's lock, as every writer's
    auto& plans = tx.get<PlanRepo>();
    auto newest = plans.find_plan(chosen.owner);
    if (!newest || newest->stripe_subscription_id != chosen.stripe_subscription_id ||
        newest->pending_plan_type != chosen.pending_plan_type ||
        newest->pending_billing_cycle != chosen.pending_billing_cycle)
      return;
    newest->pending_plan_type.reset();
    newest->pending_billing_cycle.reset();
    // Back as it was before the choice (no other change came since): as of then.
    if (replaced) {
      Plan as_replaced = *replaced;
      as_replaced.updated_at = newest->updated_at;
      if (*newest == as_replaced) newest->updated_at = replaced->updated_at;
    }
    plans.save_plan(*newest);
  });
}

}  // namespace

boost::asio::awaitable<void> price_subscription(Db& db, SubscriptionChanges& subscriptions,
                                                PlanChoice choice) {
  // A few calls at most: under a stream of choices, each one's own request asks again.
  constexpr int kMostCalls = 3;
  Plan plan = std::move(choice.plan);
  auto price = choice.subscription_price;
  if (!price) co_return;
  std::exception_ptr refused;
  try {
    co_await subscriptions.change_plan(plan, *price);
  } catch (...) {
    refused = std::current_exception();
  }
  if (refused) {
    co_await take_back_refused_choice(db, plan, choice.replaced);
    std::rethrow_exception(refused);
  }
  for (int calls = 1;; ++calls) {
    auto newest =
        co_await db.read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(plan.owner); });
    if (!newest || newest->stripe_subscription_id != plan.stripe_subscription_id) co_return;
    const auto newest_price = chosen_subscription_price(*newest);
    if (!newest_price || newest_price == price || calls == kMostCalls) co_return;
    plan = std::move(*newest);
    price = newest_price;
    co_await subscriptions.change_plan(plan, *price);
  }
}

}  // namespace billing
