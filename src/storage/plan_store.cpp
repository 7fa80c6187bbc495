#include "storage/plan_store.hpp"

#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {

// One column list for every read of a plan. Timestamps travel as ISO 8601 text both ways:
// SQLite stores that text, PostgreSQL prints its timestamptz columns so.
#define BILLING_PLAN_COLUMNS(created_at, updated_at)                                          \
  "SELECT id, hospital_id, individual_id, plan_type, status, max_agents, selected_services, " \
  "stripe_customer_id, stripe_subscription_id, billing_cycle, pending_plan_type, "            \
  "cancel_at_period_end, last_event_created, " created_at ", " updated_at " FROM plans "
#define BILLING_PLAN_QUERY(where)                                       \
  sql::Query {                                                          \
    BILLING_PLAN_COLUMNS("created_at", "updated_at")                    \
    where, BILLING_PLAN_COLUMNS(BILLING_PG_ISO8601("created_at"),       \
                                BILLING_PG_ISO8601("updated_at")) where \
  }

std::optional<Plan> SqlPlanRepo::find_plan_where(const sql::Query& query, std::string_view key) {
  std::optional<Plan> plan;
  db_.run(query, {key}, [&](const sql::Row& row) {
    const bool hospital = !row.is_null(1);
    plan.emplace(Plan{
        .id = std::string(row.text(0)),
        .owner = {hospital ? EntityKind::hospital : EntityKind::individual,
                  std::string(row.text(hospital ? 1 : 2))},
        .plan_type = decode_enum<PlanType>(row.text(3)),
        .status = decode_enum<PlanStatus>(row.text(4)),
        .max_agents = static_cast<int>(row.integer(5)),
        .selected_services = decode_services(row.text(6)),
        .stripe_customer_id = optional_text(row, 7),
        .stripe_subscription_id = optional_text(row, 8),
        .billing_cycle = optional_decoded<BillingCycle>(row, 9),
        .pending_plan_type = optional_decoded<PlanType>(row, 10),
        .cancel_at_period_end = row.integer(11) != 0,
        .last_event_created = optional_integer(row, 12),
        .created_at = decode_time(row.text(13)),
        .updated_at = decode_time(row.text(14)),
    });
  });
  return plan;
}

std::optional<Plan> SqlPlanRepo::find_plan(const EntityRef& owner) {
  static constexpr sql::Query kFind[] = {BILLING_PLAN_QUERY("WHERE hospital_id = ?"),
                                         BILLING_PLAN_QUERY("WHERE individual_id = ?")};
  return find_plan_where(for_kind(kFind, owner.kind), owner.id);
}

std::optional<Plan> SqlPlanRepo::find_plan_by_subscription(std::string_view subscription_id) {
  static constexpr sql::Query kFind = BILLING_PLAN_QUERY("WHERE stripe_subscription_id = ?");
  return find_plan_where(kFind, subscription_id);
}

std::optional<Plan> SqlPlanRepo::find_plan_by_customer(std::string_view customer_id) {
  static constexpr sql::Query kFind = BILLING_PLAN_QUERY("WHERE stripe_customer_id = ?");
  return find_plan_where(kFind, customer_id);
}

#undef BILLING_PLAN_QUERY
#undef BILLING_PLAN_COLUMNS

void SqlPlanRepo::save_plan(const Plan& plan) {
  // An update first: most saves change a plan that exists (each webhook event does), and an
  // upsert would try the insert, with every constraint and unique index, before it.
  static constexpr sql::Query kUpdate =
      "UPDATE plans SET plan_type = ?, status = ?, max_agents = ?, selected_services = ?, "
      "stripe_customer_id = ?, stripe_subscription_id = ?, billing_cycle = ?, "
      "pending_plan_type = ?, cancel_at_period_end = ?, last_event_created = ?, updated_at = ? "
      "WHERE id = ?";
  static constexpr sql::Query kInsert =
      "INSERT INTO plans (plan_type, status, max_agents, selected_services, stripe_customer_id, "
      "stripe_subscription_id, billing_cycle, pending_plan_type, cancel_at_period_end, "
      "last_event_created, updated_at, id, hospital_id, individual_id, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  saved_owners_.push_back(plan.owner);
  const auto services = encode_services(plan.selected_services);
  const auto updated_at = iso8601_micros(plan.updated_at);
  const auto changed = db_.run(
      kUpdate, {name_of(plan.plan_type), name_of(plan.status), std::int64_t{plan.max_agents},
                services, optional_param(plan.stripe_customer_id),
                optional_param(plan.stripe_subscription_id), optional_enum(plan.billing_cycle),
                optional_enum(plan.pending_plan_type), std::int64_t{plan.cancel_at_period_end},
                optional_param(plan.last_event_created), updated_at, plan.id});
  if (changed > 0) return;
  db_.run(kInsert,
          {name_of(plan.plan_type), name_of(plan.status), std::int64_t{plan.max_agents}, services,
           optional_param(plan.stripe_customer_id), optional_param(plan.stripe_subscription_id),
           optional_enum(plan.billing_cycle), optional_enum(plan.pending_plan_type),
           std::int64_t{plan.cancel_at_period_end}, optional_param(plan.last_event_created),
           updated_at, plan.id, owner_column(plan.owner, EntityKind::hospital),
           owner_column(plan.owner, EntityKind::individual), iso8601_micros(plan.created_at)});
}

void SqlPlanRepo::update_plan(const Plan& before, const Plan& after) {
  // Every column SET is a write to each index over it, even with the same value: a status change
  // (an invoice paid or failed) leaves the plan type, customer and subscription indexes alone.
  Plan only_status_moved = after;
  only_status_moved.status = before.status;
  only_status_moved.last_event_created = before.last_event_created;
  only_status_moved.updated_at = before.updated_at;
  if (only_status_moved != before) return save_plan(after);
  static constexpr sql::Query kUpdateStatus =
      "UPDATE plans SET status = ?, last_event_created = ?, updated_at = ? WHERE id = ?";
  static constexpr sql::Query kUpdateEventTime =
      "UPDATE plans SET last_event_created = ?, updated_at = ? WHERE id = ?";
  if (after.status == before.status)
    db_.run_later(kUpdateEventTime, {optional_param(after.last_event_created),
                                     iso8601_micros(after.updated_at), after.id});
  else {
    saved_owners_.push_back(after.owner);
    db_.run_later(kUpdateStatus, {name_of(after.status), optional_param(after.last_event_created),
                                  iso8601_micros(after.updated_at), after.id});
  }
}

void SqlPlanRepo::append_history(const PlanChange& c) {
  static constexpr sql::Query kAppend =
      "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
      "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
      "to_services, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  db_.run_later(kAppend,
                {c.plan_id, owner_column(c.owner, EntityKind::hospital),
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
