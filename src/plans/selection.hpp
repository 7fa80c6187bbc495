#pragma once
// Choosing a plan.
#include <optional>
#include <string>

#include "core/db.hpp"
#include "core/identity.hpp"
#include "plans/catalog.hpp"

namespace billing {

struct PlanSelection {
  PlanType plan_type;
  std::string id;                  // the hospital or individual
  std::optional<EntityKind> role;  // admins may say which kind `id` is; otherwise it is looked up
};

struct PlanChoice {
  Plan plan;
  // The plan type the subscription that pays for an active plan should now be priced at, after
  // an owner's choice: the type chosen, also the plan's own (a pending choice the provider may
  // have priced already is withdrawn so); none without such a subscription.
  std::optional<PlanType> subscription_price;
};

// POST /billing/plan/select, inside one write unit. An admin's choice is active at once (a
// manual contract); a hospital's or individual's own choice waits for payment (inactive).
PlanChoice select_plan(Tx& tx, const Catalog& catalog, const Identity& caller,
                       const PlanSelection& selection, TimePoint now);

}  // namespace billing
