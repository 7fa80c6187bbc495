#pragma once
#include <string_view>

#include "core/identity.hpp"
#include "plans/types.hpp"

namespace billing {

// The plan_update_history row for a change from `before` (none for a new plan) to `after`.
PlanChange plan_change(const Plan* before, const Plan& after, std::string_view changed_by,
                       TimePoint now, std::string_view reason);

}  // namespace billing
