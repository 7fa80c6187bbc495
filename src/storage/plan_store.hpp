#pragma once
#include "plans/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// What the units of one group-commit batch (storage/group_commit.hpp) leave to its end: the plans
// they change, which later units of the batch read from here, and their history rows. At the end
// each plan is written once, and on PostgreSQL each kind of write goes out as one statement for
// the whole batch (writes_rows_as_one).
struct PlanBatch {
  struct Change {
    std::optional<Plan> stored;  // the row as the database holds it; none: written whole
    Plan after;
  };
  std::vector<Change> changes;  // one per plan
  struct Read {
    EntityRef owner;
    std::optional<Plan> plan;  // as the database holds it, once the read has run
  };
  std::vector<Read> reads;  // expect_plan's
  std::vector<PlanChange> history;
};

// PlanRepo over either SQL backend.
class SqlPlanRepo : public PlanRepo {
 public:
  // With a batch, changes wait in it for PlanBatch's end (write_batch).
  explicit SqlPlanRepo(sql::Connection& connection, PlanBatch* batch = nullptr)
      : db_(connection), batch_(batch) {}

  std::optional<Plan> find_plan(const EntityRef& owner) override;
  void expect_plan(const EntityRef& owner) override;
  std::optional<Plan> find_plan_by_subscription(std::string_view subscription_id) override;
  std::optional<Plan> find_plan_by_customer(std::string_view customer_id) override;
  void save_plan(const Plan& plan) override;
  void update_plan(const Plan& before, const Plan& after) override;
  void append_history(const PlanChange& change) override;
  void save_other_subscription(const OtherSubscription& other) override;
  std::optional<OtherSubscription> find_other_subscription(std::string_view id) override;
  std::vector<OtherSubscription> other_subscriptions(const EntityRef& owner) override;
  void drop_other_subscription(std::string_view id) override;
  std::vector<PlanChange> history(const EntityRef& owner) override;

  // The owners whose plan this unit saved, for Db::plans_committed after its commit.
  const std::vector<EntityRef>& saved_owners() const { return saved_owners_; }

  // Writes what the batch's units left to its end.
  static void write_batch(sql::Connection& connection, const PlanBatch& batch);

 private:
  template <class Matches>
  std::optional<Plan> find_plan_where(const sql::Query& query, std::string_view key,
                                      Matches matches);
  static void write_plan(sql::Connection& connection, const Plan& plan);
  // Writes `after` over `stored` (none: the plan may be new) with the statement that sets only
  // the columns that moved.
  static void write_change(sql::Connection& connection, const std::optional<Plan>& stored,
                           const Plan& after);
  static void write_history(sql::Connection& connection, const PlanChange& change);
  std::vector<OtherSubscription> other_subscriptions_where(
      const sql::Query& query, std::initializer_list<sql::Param> params);
  // In the batch (none without one): the change of plan `plan_id`; the plan an earlier unit left
  // that `matches`; the read expect_plan queued for `owner`.
  PlanBatch::Change* batch_change(std::string_view plan_id);
  template <class Matches>
  const Plan* changed_in_batch(Matches matches) const;
  PlanBatch::Read* read_in_batch(const EntityRef& owner);

  sql::Connection& db_;
  PlanBatch* batch_;
  std::vector<EntityRef> saved_owners_;
};

}  // namespace billing
