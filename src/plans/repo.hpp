#pragma once
// What the plans domain asks of storage, inside a unit of work (core/db.hpp).
#include <optional>
#include <string_view>
#include <vector>

#include "plans/types.hpp"

namespace billing {

class PlanRepo {
 public:
  virtual ~PlanRepo() = default;

  virtual std::optional<Plan> find_plan(const EntityRef& owner) = 0;
  // The unit will soon ask for the owner's plan: storage may read it along with the unit's next
  // statement, saving a round trip to the database.
  virtual void expect_plan(const EntityRef& owner) = 0;
  virtual std::optional<Plan> find_plan_by_subscription(std::string_view subscription_id) = 0;
  virtual std::optional<Plan> find_plan_by_customer(std::string_view customer_id) = 0;
  virtual void save_plan(const Plan& plan) = 0;  // insert, or update the row with plan.id
  // Saves `after` over the stored `before` (the same plan), writing only what a status change
  // touches when nothing else moved: the most frequent change, by webhook events.
  virtual void update_plan(const Plan& before, const Plan& after) = 0;
  virtual void append_history(const PlanChange& change) = 0;

  // Inserts, or updates all but `created` of the one with its id.
  virtual void save_other_subscription(const OtherSubscription& other) = 0;
  virtual std::optional<OtherSubscription> find_other_subscription(std::string_view id) = 0;
  // The owner's, newest (by `created`) first.
  virtual std::vector<OtherSubscription> other_subscriptions(const EntityRef& owner) = 0;
  virtual void drop_other_subscription(std::string_view id) = 0;
  virtual std::vector<PlanChange> history(const EntityRef& owner) = 0;  // oldest first
};

}  // namespace billing
