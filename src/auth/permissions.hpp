#pragma once
// The seed's permission matrix, as data: which role may do what, and whose entity.
#include <string_view>

#include "auth/identity.hpp"
#include "plans/types.hpp"

namespace billing {

enum class Action {
  issue_csrf_token,
  view_plans,         // GET /billing/plan
  view_services,      // GET /billing/services
  select_services,    // POST /billing/services/select
  view_current_plan,  // GET /billing/plan/current
  select_plan,        // POST /billing/plan/select
};

bool allowed(Role role, Action action);
// The 403 detail for a role that may not perform `action`.
std::string_view denial_detail(Action action);
// Throws 403 unless the caller may act for `entity`: admins for any, others for their own.
void require_own(const Identity& caller, const EntityRef& entity);

}  // namespace billing
