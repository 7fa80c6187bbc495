#include "plans/selection.hpp"

#include "entities/ownership.hpp"
#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "plans/history.hpp"
#include "plans/repo.hpp"

namespace billing {
Plan select_plan(Tx& tx, const Catalog& catalog, const Identity& caller,
                 const PlanSelection& selection, TimePoint now) {
  auto& entities = tx.get<EntityRepo>();
  auto& plans = tx.get<PlanRepo>();
  const EntityRef owner = resolve_entity(entities, caller, selection.id, selection.role);
  const PlanOffer* offer = catalog.find(owner.kind, selection.plan_type);
  if (!offer) throw ApiError(400, "Invalid plan type");
  entities.entity_exists(owner);  // holds the owner's row until commit: one change at a time

  const auto existing = plans.find_plan(owner);
  // Choosing the plan one already has active changes nothing (it must not undo an activation).
  if (existing && existing->plan_type == selection.plan_type &&
      existing->status == PlanStatus::active)
    return *existing;
  Plan plan = existing ? *existing
                       : Plan{.id = "plan_" + random_hex(12), .owner = owner, .created_at = now};
  const bool same_type = existing && existing->plan_type == selection.plan_type;
  plan.plan_type = selection.plan_type;
  plan.status = caller.role == Role::admin ? PlanStatus::active : PlanStatus::inactive;
  plan.max_agents = offer->max_agents;
  if (!same_type) plan.selected_services = offer->default_services;

  if (existing && plan == *existing) return plan;  // nothing changes, nothing to record
  plan.updated_at = now;
  plans.save_plan(plan);
  plans.append_history(plan_change(existing ? &*existing : nullptr, plan, caller, now,
                                   caller.role == Role::admin
                                       ? "selected by admin (manual contract)"
                                       : "selected, awaiting payment"));
  return plan;
}

}  // namespace billing
