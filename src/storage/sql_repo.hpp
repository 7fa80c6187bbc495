#pragma once
#include <vector>

#include "storage/migrations.hpp"
#include "storage/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// The Repo over any sql::Connection; the backend supplies the connection and its dialect.
class SqlRepo final : public Repo {
 public:
  SqlRepo(sql::Connection& connection, const sql::Statements& statements, bool write_unit)
      : db_(connection), sql_(statements), write_unit_(write_unit) {}

  void ping() override;
  bool entity_exists(const EntityRef& entity) override;
  void create_entity(const EntityRef& entity, TimePoint now) override;
  void create_assistant(std::string_view id, std::string_view hospital_id, TimePoint now) override;
  std::optional<std::string> assistant_hospital(std::string_view id) override;
  std::optional<Plan> find_plan(const EntityRef& owner) override;
  void save_plan(const Plan& plan) override;
  void append_history(const PlanChange& change) override;
  std::vector<PlanChange> history(const EntityRef& owner) override;

 private:
  sql::Connection& db_;
  const sql::Statements& sql_;
  bool write_unit_;
};

// Runs `work` in one write transaction on `connection`: commit on return, rollback on throw.
void run_write_unit(sql::Connection& connection, const sql::Statements& statements,
                    FunctionRef<void(Repo&)> work);

// Applies the migrations not yet recorded, each in its own transaction.
void apply_migrations(sql::Connection& connection, const sql::Statements& statements,
                      const std::vector<Migration>& migrations);

}  // namespace billing
