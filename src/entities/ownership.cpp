#include "entities/ownership.hpp"

#include "kit/api_error.hpp"

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

void require_own(const Identity& caller, const EntityRef& entity) {
  if (caller.role == Role::admin) return;
  const bool same_kind = (caller.role == Role::hospital && entity.kind == EntityKind::hospital) ||
                         (caller.role == Role::individual && entity.kind == EntityKind::individual);
  if (!same_kind || caller.entity_id != entity.id)
    throw ApiError(403, entity.kind == EntityKind::hospital
                            ? "Not allowed to manage this hospital"
                            : "Not allowed to manage this individual");
}

EntityRef resolve_entity(EntityRepo& repo, const Identity& caller, const std::string& id,
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

}  // namespace billing
