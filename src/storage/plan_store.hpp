#pragma once
#include "plans/repo.hpp"
#include "storage/commit_batch.hpp"
#include "storage/sql.hpp"

namespace billing {

// True when `after` differs from `before` only in what a status change touches (status, newest
// event, update time): the most frequent change, written without the other columns and indexes.
bool only_status_moved(const Plan& before, const Plan& after);

// PlanRepo over either SQL backend. Inside a commit batch (`batch` set), plans are read through
// the batch's cache and their changes and history rows left to it.
class SqlPlanRepo : public PlanRepo {
 public:
  explicit SqlPlanRepo(sql::Connection& connection, CommitBatch* batch = nullptr)
      : db_(connection), batch_(batch) {}

  void expect_plan(const EntityRef& owner) override;
  void expect_plan_by_subscription(std::string_view subscription_id) override;
  void expect_plan_by_customer(std::string_view customer_id) override;
  std::optional<Plan> find_plan(const EntityRef& owner) override;
  std::optional<Plan> find_plan_by_subscription(std::string_view subscription_id) override;
  std::optional<Plan> find_plan_by_customer(std::string_view customer_id) override;
  void save_plan(const Plan& plan) override;
  void update_plan(const Plan& before, const Plan& after) override;
  void append_history(const PlanChange& change) override;
  std::vector<PlanChange> history(const EntityRef& owner) override;

  // The plans that one of four key lists (storage/commit_batch.hpp) names, in the order of
  // CommitBatch::PlanKey (hospital, individual, subscription, customer); a plan may come twice.
  static const sql::Query& plans_by_keys();
  static Plan decode_plan(const sql::Row& row);  // a row of any plan query here

  // The owners whose plan this unit saved, for Db::plans_committed after its commit.
  const std::vector<EntityRef>& saved_owners() const { return saved_owners_; }

 private:
  static CommitBatch::PlanKey owner_key(EntityKind kind) {
    return kind == EntityKind::hospital ? CommitBatch::PlanKey::hospital
                                        : CommitBatch::PlanKey::individual;
  }
  std::optional<Plan> find_plan_where(const sql::Query& query, std::string_view key,
                                      CommitBatch::PlanKey key_kind,
                                      FunctionRef<bool(const Plan&)> matches);

  sql::Connection& db_;
  CommitBatch* batch_;
  std::vector<EntityRef> saved_owners_;
};

}  // namespace billing
