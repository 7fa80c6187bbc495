#pragma once
// Whose entity a request is about: the caller's own, or for admins any they name.
#include <optional>
#include <string>

#include "core/entity.hpp"
#include "core/identity.hpp"
#include "entities/repo.hpp"

namespace billing {

// The caller's own entity, for roles that have one (hospital, individual; an assistant's
// hospital).
std::optional<EntityRef> own_entity(const Identity& caller);

// Throws 403 unless the caller may act for `entity`: admins for any, others for their own.
void require_own(const Identity& caller, const EntityRef& entity);

// The entity a request names: the caller's own, or for admins `id` (of kind `role` if given).
// 403 for someone else's entity; 404 when an admin names an entity that does not exist.
EntityRef resolve_entity(EntityRepo& repo, const Identity& caller, const std::string& id,
                         std::optional<EntityKind> role);

}  // namespace billing
