#include "plans/selection.hpp"

#include "auth/permissions.hpp"
#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "plans/history.hpp"

namespace billing {
namespace {

[[noreturn]] void not_found(EntityKind kind) {
  throw ApiError(404, kind == EntityKind::hospital ? "Hospital not found" : "Individual not found");
}

}  // namespace

std::optional<EntityRef> own_entity(const Identity& caller) {
  switch (caller.role) {
    case Role::hospital:
      return EntityRef{EntityKind::hospital, caller.entity_id};
    case Role::individual:
      return EntityRef{EntityKind::individual, caller.entity_id};
    case Role::assistant:
      return EntityRef{EntityKind::hospital, caller.hospital_id};
    case Role::admin:
      break;
  }
  return std::nullopt;
}

EntityRef resolve_entity(Repo& repo, const Identity& caller, const std::string& id,
                         std::optional<EntityKind> role) {
  if (caller.role != Role::admin) {
    const EntityRef own = *own_entity(caller);
    const EntityRef named{role.value_or(own.kind), id};
    if (named != own) require_own(caller, named);  // throws: not theirs
    return own;
  }
  if (role) {
    EntityRef entity{*role, id};
    if (!repo.entity_exists(entity)) not_found(*role);
    return entity;
  }
  for (EntityKind kind : {EntityKind::hospital, EntityKind::individual})
    if (repo.entity_exists(EntityRef{kind, id})) return EntityRef{kind, id};
  throw ApiError(404, "Entity not found");
}

Plan select_plan(Repo& repo, const Catalog& catalog, const Identity& caller,
                 const PlanSelection& selection, TimePoint now) {
  const EntityRef owner = resolve_entity(repo, caller, selection.id, selection.role);
  const PlanOffer* offer = catalog.find(owner.kind, selection.plan_type);
  if (!offer) throw ApiError(400, "Invalid plan type");
  repo.entity_exists(owner);  // holds the owner's row until commit: one change at a time

  const auto existing = repo.find_plan(owner);
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
  repo.save_plan(plan);
  repo.append_history(plan_change(existing ? &*existing : nullptr, plan, caller, now,
                                  caller.role == Role::admin ? "selected by admin (manual contract)"
                                                             : "selected, awaiting payment"));
  return plan;
}

}  // namespace billing
