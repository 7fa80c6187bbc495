#pragma once
#include "plans/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// PlanRepo over either SQL backend.
class SqlPlanRepo : public PlanRepo {
 public:
  explicit SqlPlanRepo(sql::Connection& connection) : db_(connection) {}

  std::optional<Plan> find_plan(const EntityRef& owner) override;
  void save_plan(const Plan& plan) override;
  void append_history(const PlanChange& change) override;
  std::vector<PlanChange> history(const EntityRef& owner) override;

 private:
  sql::Connection& db_;
};

}  // namespace billing
