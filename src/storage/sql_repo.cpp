#include "storage/sql_repo.hpp"

#include <stdexcept>

#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {
namespace {

std::size_t index_of(EntityKind kind) {
  return static_cast<std::size_t>(kind);
}

TimePoint decode_time(std::string_view text) {
  if (auto t = parse_iso8601(text)) return *t;
  throw std::runtime_error("unexpected timestamp in database: " + std::string(text));
}

std::optional<std::string> optional_text(const sql::Row& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return std::string(row.text(column));
}

sql::Param optional_param(const std::optional<std::string>& value) {
  if (value) return std::string_view(*value);
  return nullptr;
}

template <class E>
sql::Param optional_enum(const std::optional<E>& value) {
  if (value) return name_of(*value);
  return nullptr;
}

template <class E>
std::optional<E> optional_decoded(const sql::Row& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return decode_enum<E>(row.text(column));
}

}  // namespace

void SqlRepo::ping() {
  db_.run(sql_.ping, {});
}

bool SqlRepo::entity_exists(const EntityRef& entity) {
  const auto& statements = write_unit_ ? sql_.lock_entity : sql_.entity_exists;
  return db_.run(statements[index_of(entity.kind)], {entity.id}) > 0;
}

void SqlRepo::create_entity(const EntityRef& entity, TimePoint now) {
  db_.run(sql_.create_entity[index_of(entity.kind)], {entity.id, iso8601_micros(now)});
}

void SqlRepo::create_assistant(std::string_view id, std::string_view hospital_id, TimePoint now) {
  db_.run(sql_.create_assistant, {id, hospital_id, iso8601_micros(now)});
}

std::optional<std::string> SqlRepo::assistant_hospital(std::string_view id) {
  std::optional<std::string> hospital;
  db_.run(sql_.assistant_hospital, {id}, [&](const sql::Row& row) { hospital = row.text(0); });
  return hospital;
}

// Columns: id, plan_type, status, max_agents, selected_services, stripe_customer_id,
// stripe_subscription_id, created_at, updated_at.
std::optional<Plan> SqlRepo::find_plan(const EntityRef& owner) {
  std::optional<Plan> plan;
  db_.run(sql_.find_plan[index_of(owner.kind)], {owner.id}, [&](const sql::Row& row) {
    plan.emplace(Plan{
        .id = std::string(row.text(0)),
        .owner = owner,
        .plan_type = decode_enum<PlanType>(row.text(1)),
        .status = decode_enum<PlanStatus>(row.text(2)),
        .max_agents = static_cast<int>(row.integer(3)),
        .selected_services = decode_services(row.text(4)),
        .stripe_customer_id = optional_text(row, 5),
        .stripe_subscription_id = optional_text(row, 6),
        .created_at = decode_time(row.text(7)),
        .updated_at = decode_time(row.text(8)),
    });
  });
  return plan;
}

void SqlRepo::save_plan(const Plan& plan) {
  const bool hospital = plan.owner.kind == EntityKind::hospital;
  db_.run(
      sql_.save_plan,
      {plan.id, hospital ? sql::Param(plan.owner.id) : nullptr,
       hospital ? nullptr : sql::Param(plan.owner.id), name_of(plan.plan_type),
       name_of(plan.status), std::int64_t{plan.max_agents}, encode_services(plan.selected_services),
       optional_param(plan.stripe_customer_id), optional_param(plan.stripe_subscription_id),
       iso8601_micros(plan.created_at), iso8601_micros(plan.updated_at)});
}

void SqlRepo::append_history(const PlanChange& c) {
  const bool hospital = c.owner.kind == EntityKind::hospital;
  db_.run(sql_.append_history,
          {c.plan_id, hospital ? sql::Param(c.owner.id) : nullptr,
           hospital ? nullptr : sql::Param(c.owner.id), c.changed_by, iso8601_micros(c.changed_at),
           optional_enum(c.from_plan_type), name_of(c.to_plan_type), optional_enum(c.from_status),
           name_of(c.to_status), encode_services(c.from_services), encode_services(c.to_services),
           c.reason});
}

// Columns: plan_id, changed_by, changed_at, from_plan_type, to_plan_type, from_status,
// to_status, from_services, to_services, reason.
std::vector<PlanChange> SqlRepo::history(const EntityRef& owner) {
  std::vector<PlanChange> changes;
  db_.run(sql_.history[index_of(owner.kind)], {owner.id}, [&](const sql::Row& row) {
    changes.push_back(PlanChange{
        .plan_id = std::string(row.text(0)),
        .owner = owner,
        .changed_by = std::string(row.text(1)),
        .changed_at = decode_time(row.text(2)),
        .from_plan_type = optional_decoded<PlanType>(row, 3),
        .to_plan_type = decode_enum<PlanType>(row.text(4)),
        .from_status = optional_decoded<PlanStatus>(row, 5),
        .to_status = decode_enum<PlanStatus>(row.text(6)),
        .from_services = decode_services(row.text(7)),
        .to_services = decode_services(row.text(8)),
        .reason = std::string(row.text(9)),
    });
  });
  return changes;
}

void run_write_unit(sql::Connection& connection, const sql::Statements& statements,
                    FunctionRef<void(Repo&)> work) {
  connection.exec(statements.begin_write);
  try {
    SqlRepo repo(connection, statements, true);
    work(repo);
    connection.exec("COMMIT");
  } catch (...) {
    try {
      connection.exec("ROLLBACK");
    } catch (...) {
      // The connection is broken; the original error says more.
    }
    throw;
  }
}

void apply_migrations(sql::Connection& connection, const sql::Statements& statements,
                      const std::vector<Migration>& migrations) {
  for (const Migration& m : migrations) {
    connection.exec(statements.begin_migration);
    try {
      connection.exec(statements.create_migrations_table);
      bool applied = false;
      connection.run(statements.applied_migrations, {std::int64_t{m.version}},
                     [&](const sql::Row&) { applied = true; });
      if (!applied) {
        connection.exec(m.sql);
        connection.run(statements.record_migration, {std::int64_t{m.version}, m.name});
      }
      connection.exec("COMMIT");
    } catch (...) {
      connection.exec("ROLLBACK");
      throw;
    }
  }
}

}  // namespace billing
