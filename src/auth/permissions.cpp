#include "auth/permissions.hpp"

#include "kit/api_error.hpp"

namespace billing {

bool allowed(Role role, Action action) {
  switch (action) {
    case Action::issue_csrf_token:
    case Action::view_services:
      return true;
    case Action::view_plans:
    case Action::view_current_plan:
    case Action::select_plan:
      return role != Role::assistant;
    case Action::select_services:
      return role == Role::admin || role == Role::hospital;
  }
  return false;
}

std::string_view denial_detail(Action action) {
  if (action == Action::select_services) return "Only hospital administrators can select services";
  return "Not enough permissions";
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

}  // namespace billing
