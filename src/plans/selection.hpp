#pragma once
// Choosing a plan, and finding whose plan a request is about.
#include <optional>
#include <string>

#include "auth/identity.hpp"
#include "plans/catalog.hpp"
#include "storage/repo.hpp"

namespace billing {

struct PlanSelection {
  PlanType plan_type;
  std::string id;                  // the hospital or individual
  std::optional<EntityKind> role;  // admins may say which kind `id` is; otherwise it is looked up
};

// POST /billing/plan/select, inside one write unit. An admin's choice is active at once (a
// manual contract); a hospital's or individual's own choice waits for payment (inactive).
Plan select_plan(Repo& repo, const Catalog& catalog, const Identity& caller,
                 const PlanSelection& selection, TimePoint now);

// The entity a request names: the caller's own, or for admins `id` (of kind `role` if given).
// 403 for someone else's entity; 404 when an admin names an entity that does not exist.
EntityRef resolve_entity(Repo& repo, const Identity& caller, const std::string& id,
                         std::optional<EntityKind> role);

// The caller's own entity, for roles that have one (hospital, individual; an assistant's
// hospital).
std::optional<EntityRef> own_entity(const Identity& caller);

}  // namespace billing
