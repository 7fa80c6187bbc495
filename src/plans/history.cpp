#include "plans/history.hpp"

namespace billing {

PlanChange plan_change(const Plan* before, const Plan& after, std::string_view changed_by,
                       TimePoint now, std::string_view reason) {
  PlanChange change{
      .plan_id = after.id,
      .owner = after.owner,
      .changed_by = std::string(changed_by),
      .changed_at = now,
      .to_plan_type = after.plan_type,
      .to_status = after.status,
      .to_services = after.selected_services,
      .reason = std::string(reason),
  };
  if (before) {
    change.from_plan_type = before->plan_type;
    change.from_status = before->status;
    change.from_services = before->selected_services;
  }
  return change;
}

}  // namespace billing
