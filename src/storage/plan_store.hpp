#pragma once
#include "plans/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// PlanRepo over either SQL backend.
class SqlPlanRepo : public PlanRepo {
 public:
  explicit SqlPlanRepo(sql::Connection& connection) : db_(connection) {}

  std::optional<Plan> find_plan(const EntityRef& owner) override;
  std::optional<Plan> find_plan_by_subscription(std::string_view subscription_id) override;
  std::optional<Plan> find_plan_by_customer(std::string_view customer_id) override;
  void save_plan(const Plan& plan) override;
  void update_plan(const Plan& before, const Plan& after) override;
  void append_history(const PlanChange& change) override;
  std::vector<PlanChange> history(const EntityRef& owner) override;

  // The owners whose plan this unit saved, for Db::plans_committed after its commit.
  const std::vector<EntityRef>& saved_owners() const { return saved_owners_; }

 private:
  std::optional<Plan> find_plan_where(const sql::Query& query, std::string_view key);

  sql::Connection& db_;
  std::vector<EntityRef> saved_owners_;
};

}  // namespace billing
