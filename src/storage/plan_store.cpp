#include "storage/plan_store.hpp"

#include <stdexcept>

#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {
namespace {

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

// The owner's id in the column of its kind, NULL in the other: hospital_id, individual_id.
sql::Param owner_column(const EntityRef& owner, EntityKind column) {
  if (owner.kind == column) return std::string_view(owner.id);
  return nullptr;
}

}  // namespace

std::optional<Plan> SqlPlanRepo::find_plan(const EntityRef& owner) {
  // Timestamps travel as ISO 8601 text both ways: SQLite stores that text, PostgreSQL prints its
  // timestamptz columns so.
  static constexpr sql::Query kFind[] = {
      {"SELECT id, plan_type, status, max_agents, selected_services, stripe_customer_id, "
       "stripe_subscription_id, created_at, updated_at FROM plans WHERE hospital_id = ?",
       "SELECT id, plan_type, status, max_agents, selected_services, stripe_customer_id, "
       "stripe_subscription_id, "
       "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
       "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
       "FROM plans WHERE hospital_id = ?"},
      {"SELECT id, plan_type, status, max_agents, selected_services, stripe_customer_id, "
       "stripe_subscription_id, created_at, updated_at FROM plans WHERE individual_id = ?",
       "SELECT id, plan_type, status, max_agents, selected_services, stripe_customer_id, "
       "stripe_subscription_id, "
       "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
       "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
       "FROM plans WHERE individual_id = ?"}};
  std::optional<Plan> plan;
  db_.run(for_kind(kFind, owner.kind), {owner.id}, [&](const sql::Row& row) {
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

void SqlPlanRepo::save_plan(const Plan& plan) {
  static constexpr sql::Query kSave =
      "INSERT INTO plans (id, hospital_id, individual_id, plan_type, status, max_agents, "
      "selected_services, stripe_customer_id, stripe_subscription_id, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
      "plan_type = excluded.plan_type, status = excluded.status, "
      "max_agents = excluded.max_agents, selected_services = excluded.selected_services, "
      "stripe_customer_id = excluded.stripe_customer_id, "
      "stripe_subscription_id = excluded.stripe_subscription_id, "
      "updated_at = excluded.updated_at";
  db_.run(kSave, {plan.id, owner_column(plan.owner, EntityKind::hospital),
                  owner_column(plan.owner, EntityKind::individual), name_of(plan.plan_type),
                  name_of(plan.status), std::int64_t{plan.max_agents},
                  encode_services(plan.selected_services), optional_param(plan.stripe_customer_id),
                  optional_param(plan.stripe_subscription_id), iso8601_micros(plan.created_at),
                  iso8601_micros(plan.updated_at)});
}

void SqlPlanRepo::append_history(const PlanChange& c) {
  static constexpr sql::Query kAppend =
      "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
      "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
      "to_services, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  db_.run(kAppend, {c.plan_id, owner_column(c.owner, EntityKind::hospital),
                    owner_column(c.owner, EntityKind::individual), c.changed_by,
                    iso8601_micros(c.changed_at), optional_enum(c.from_plan_type),
                    name_of(c.to_plan_type), optional_enum(c.from_status), name_of(c.to_status),
                    encode_services(c.from_services), encode_services(c.to_services), c.reason});
}

std::vector<PlanChange> SqlPlanRepo::history(const EntityRef& owner) {
  static constexpr sql::Query kHistory[] = {
      {"SELECT plan_id, changed_by, changed_at, from_plan_type, to_plan_type, from_status, "
       "to_status, from_services, to_services, reason FROM plan_update_history "
       "WHERE hospital_id = ? ORDER BY id",
       "SELECT plan_id, changed_by, "
       "to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
       "from_plan_type, to_plan_type, from_status, to_status, from_services, to_services, "
       "reason FROM plan_update_history WHERE hospital_id = ? ORDER BY id"},
      {"SELECT plan_id, changed_by, changed_at, from_plan_type, to_plan_type, from_status, "
       "to_status, from_services, to_services, reason FROM plan_update_history "
       "WHERE individual_id = ? ORDER BY id",
       "SELECT plan_id, changed_by, "
       "to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
       "from_plan_type, to_plan_type, from_status, to_status, from_services, to_services, "
       "reason FROM plan_update_history WHERE individual_id = ? ORDER BY id"}};
  std::vector<PlanChange> changes;
  db_.run(for_kind(kHistory, owner.kind), {owner.id}, [&](const sql::Row& row) {
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

}  // namespace billing
