#pragma once
// What the services domain asks of storage, inside a unit of work (core/db.hpp). A hospital's
// services are part of its plan's row; this domain changes only them.
#include "plans/types.hpp"

namespace billing {

class ServiceRepo {
 public:
  virtual ~ServiceRepo() = default;

  // Stores plan.selected_services and plan.updated_at on the existing row plan.id; throws if
  // there is no such row (a rule that changes services has read the plan first).
  virtual void save_services(const Plan& plan) = 0;
};

}  // namespace billing
