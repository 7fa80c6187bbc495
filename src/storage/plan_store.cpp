#include "storage/plan_store.hpp"

#include "kit/time.hpp"
#include "storage/codec.hpp"
#include "storage/entity_store.hpp"

namespace billing {

// One column list for every read of a plan. Timestamps travel as ISO 8601 text both ways:
// SQLite stores that text, PostgreSQL prints its timestamptz columns so.
#define BILLING_PLAN_COLUMNS(created_at, updated_at)                                          \
  "SELECT id, hospital_id, individual_id, plan_type, status, max_agents, selected_services, " \
  "stripe_customer_id, stripe_subscription_id, billing_cycle, pending_plan_type, "            \
  "pending_billing_cycle, cancel_at_period_end, collection_paused, "                          \
  "last_event_created, " created_at ", " updated_at " FROM plans "
#define BILLING_PLAN_QUERY(where)                                       \
  sql::Query {                                                          \
    BILLING_PLAN_COLUMNS("created_at", "updated_at")                    \
    where, BILLING_PLAN_COLUMNS(BILLING_PG_ISO8601("created_at"),       \
                                BILLING_PG_ISO8601("updated_at")) where \
  }

namespace {

// A row of BILLING_PLAN_COLUMNS.
Plan decode_plan(const sql::Row& row) {
  const bool hospital = !row.is_null(1);
  return Plan{
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
      .pending_billing_cycle = optional_decoded<BillingCycle>(row, 11),
      .cancel_at_period_end = row.integer(12) != 0,
      .collection_paused = row.integer(13) != 0,
      .last_event_created = optional_integer(row, 14),
      .created_at = decode_time(row.text(15)),
      .updated_at = decode_time(row.text(16)),
  };
}

auto owned_by(const EntityRef& owner) {
  return [&owner](const Plan& plan) { return plan.owner == owner; };
}

constexpr sql::Query kFindByOwner[] = {BILLING_PLAN_QUERY("WHERE hospital_id = ?"),
                                       BILLING_PLAN_QUERY("WHERE individual_id = ?")};

}  // namespace

PlanBatch::Change* SqlPlanRepo::batch_change(std::string_view plan_id) {
  if (!batch_) return nullptr;
  for (auto& change : batch_->changes)
    if (change.after.id == plan_id) return &change;
  return nullptr;
}

template <class Matches>
const Plan* SqlPlanRepo::changed_in_batch(Matches matches) const {
  if (batch_)
    for (const auto& change : batch_->changes)
      if (matches(change.after)) return &change.after;
  return nullptr;
}

PlanBatch::Read* SqlPlanRepo::read_in_batch(const EntityRef& owner) {
  if (batch_)
    for (auto& read : batch_->reads)
      if (read.owner == owner) return &read;
  return nullptr;
}

template <class Matches>
std::optional<Plan> SqlPlanRepo::find_plan_where(const sql::Query& query, std::string_view key,
                                                 Matches matches) {
  // In a batch, a plan an earlier unit changed is read as it left it; its row in the database,
  // as it was before, is passed over (the change may have moved the key).
  if (const Plan* changed = changed_in_batch(matches)) return *changed;
  std::optional<Plan> plan;
  db_.run(query, {key}, [&](const sql::Row& row) {
    auto found = decode_plan(row);
    if (!batch_change(found.id)) plan.emplace(std::move(found));
  });
  return plan;
}

void SqlPlanRepo::expect_plan(const EntityRef& owner) {
  if (!batch_ || changed_in_batch(owned_by(owner)) || read_in_batch(owner)) return;
  batch_->reads.push_back({owner, std::nullopt});
  try {
    db_.read_later(for_kind(kFindByOwner, owner.kind), {owner.id},
                   [reads = &batch_->reads, i = batch_->reads.size() - 1](const sql::Row& row) {
                     (*reads)[i].plan = decode_plan(row);
                   });
  } catch (...) {
    batch_->reads.pop_back();  // not read: no answer to give
    throw;
  }
}

std::optional<Plan> SqlPlanRepo::find_plan(const EntityRef& owner) {
  if (const Plan* changed = changed_in_batch(owned_by(owner))) return *changed;
  if (const PlanBatch::Read* read = read_in_batch(owner)) {
    db_.settle();  // its rows have come
    if (read->plan) return read->plan;
    // No plan may mean no owner's row, and so no lock on it, when the plan was read: the row
    // may exist since (a first checkout, here or elsewhere), so lock it and read again.
    hold_entity_row(db_, owner);
  }
  return find_plan_where(for_kind(kFindByOwner, owner.kind), owner.id, owned_by(owner));
}

std::optional<Plan> SqlPlanRepo::find_plan_by_subscription(std::string_view subscription_id) {
  static constexpr sql::Query kFind = BILLING_PLAN_QUERY("WHERE stripe_subscription_id = ?");
  return find_plan_where(kFind, subscription_id, [&](const Plan& plan) {
    return plan.stripe_subscription_id == subscription_id;
  });
}

std::optional<Plan> SqlPlanRepo::find_plan_by_customer(std::string_view customer_id) {
  static constexpr sql::Query kFind = BILLING_PLAN_QUERY("WHERE stripe_customer_id = ?");
  return find_plan_where(kFind, customer_id,
                         [&](const Plan& plan) { return plan.stripe_customer_id == customer_id; });
}

#undef BILLING_PLAN_QUERY
#undef BILLING_PLAN_COLUMNS

// The columns of a history row, in the order of its parameters.
#define BILLING_HISTORY_COLUMNS                                                                 \
  "plan_id, hospital_id, individual_id, changed_by, changed_at, from_plan_type, to_plan_type, " \
  "from_status, to_status, from_services, to_services, reason"

namespace {

// Which columns a change of a stored plan moves beyond its event time: none, the status only
// (an invoice paid or failed, the most frequent change), or more.
enum class PlanMove { event_time, status, more };

PlanMove plan_move(const Plan& stored, const Plan& after) {
  Plan same_else = after;
  same_else.status = stored.status;
  same_else.last_event_created = stored.last_event_created;
  same_else.updated_at = stored.updated_at;
  if (same_else != stored) return PlanMove::more;
  return after.status == stored.status ? PlanMove::event_time : PlanMove::status;
}

}  // namespace

void SqlPlanRepo::write_plan(sql::Connection& connection, const Plan& plan) {
  // An update first: most saves change a plan that exists (each webhook event does), and an
  // upsert would try the insert, with every constraint and unique index, before it.
  static constexpr sql::Query kUpdate =
      "UPDATE plans SET plan_type = ?, status = ?, max_agents = ?, selected_services = ?, "
      "stripe_customer_id = ?, stripe_subscription_id = ?, billing_cycle = ?, "
      "pending_plan_type = ?, pending_billing_cycle = ?, cancel_at_period_end = ?, "
      "collection_paused = ?, last_event_created = ?, updated_at = ? WHERE id = ?";
  static constexpr sql::Query kInsert =
      "INSERT INTO plans (plan_type, status, max_agents, selected_services, stripe_customer_id, "
      "stripe_subscription_id, billing_cycle, pending_plan_type, pending_billing_cycle, "
      "cancel_at_period_end, collection_paused, last_event_created, updated_at, id, "
      "hospital_id, individual_id, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  const auto services = encode_services(plan.selected_services);
  const auto updated_at = iso8601_micros(plan.updated_at);
  const auto changed = connection.run(
      kUpdate, {name_of(plan.plan_type), name_of(plan.status), std::int64_t{plan.max_agents},
                services, optional_param(plan.stripe_customer_id),
                optional_param(plan.stripe_subscription_id), optional_enum(plan.billing_cycle),
                optional_enum(plan.pending_plan_type), optional_enum(plan.pending_billing_cycle),
                std::int64_t{plan.cancel_at_period_end}, std::int64_t{plan.collection_paused},
                optional_param(plan.last_event_created), updated_at, plan.id});
  if (changed > 0) return;
  connection.run(
      kInsert,
      {name_of(plan.plan_type), name_of(plan.status), std::int64_t{plan.max_agents}, services,
       optional_param(plan.stripe_customer_id), optional_param(plan.stripe_subscription_id),
       optional_enum(plan.billing_cycle), optional_enum(plan.pending_plan_type),
       optional_enum(plan.pending_billing_cycle), std::int64_t{plan.cancel_at_period_end},
       std::int64_t{plan.collection_paused}, optional_param(plan.last_event_created), updated_at,
       plan.id, owner_column(plan.owner, EntityKind::hospital),
       owner_column(plan.owner, EntityKind::individual), iso8601_micros(plan.created_at)});
}

void SqlPlanRepo::save_plan(const Plan& plan) {
  saved_owners_.push_back(plan.owner);
  if (!batch_) return write_plan(db_, plan);
  if (auto* change = batch_change(plan.id))
    change->after = plan;
  else
    batch_->changes.push_back({std::nullopt, plan});
}

void SqlPlanRepo::update_plan(const Plan& before, const Plan& after) {
  if (plan_move(before, after) != PlanMove::event_time) saved_owners_.push_back(after.owner);
  if (!batch_) return write_change(db_, before, after);
  if (auto* change = batch_change(after.id))
    change->after = after;
  else
    batch_->changes.push_back({before, after});
}

void SqlPlanRepo::write_change(sql::Connection& connection, const std::optional<Plan>& stored,
                               const Plan& after) {
  // Every column SET is a write to each index over it, even with the same value: a status change
  // (an invoice paid or failed) leaves the plan type, customer and subscription indexes alone.
  static constexpr sql::Query kUpdateStatus =
      "UPDATE plans SET status = ?, last_event_created = ?, updated_at = ? WHERE id = ?";
  static constexpr sql::Query kUpdateEventTime =
      "UPDATE plans SET last_event_created = ?, updated_at = ? WHERE id = ?";
  switch (stored ? plan_move(*stored, after) : PlanMove::more) {
    case PlanMove::more:
      return write_plan(connection, after);
    case PlanMove::status:
      return connection.run_later(kUpdateStatus,
                                  {name_of(after.status), optional_param(after.last_event_created),
                                   iso8601_micros(after.updated_at), after.id});
    case PlanMove::event_time:
      return connection.run_later(kUpdateEventTime, {optional_param(after.last_event_created),
                                                     iso8601_micros(after.updated_at), after.id});
  }
}

void SqlPlanRepo::append_history(const PlanChange& change) {
  if (batch_) return batch_->history.push_back(change);
  write_history(db_, change);
}

void SqlPlanRepo::write_history(sql::Connection& connection, const PlanChange& c) {
  static constexpr sql::Query kAppend = "INSERT INTO plan_update_history (" BILLING_HISTORY_COLUMNS
                                        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  connection.run_later(
      kAppend, {c.plan_id, owner_column(c.owner, EntityKind::hospital),
                owner_column(c.owner, EntityKind::individual), c.changed_by,
                iso8601_micros(c.changed_at), optional_enum(c.from_plan_type),
                name_of(c.to_plan_type), optional_enum(c.from_status), name_of(c.to_status),
                encode_services(c.from_services), encode_services(c.to_services), c.reason});
}

void SqlPlanRepo::write_batch(sql::Connection& connection, const PlanBatch& batch) {
  if (!writes_rows_as_one(connection)) {
    for (const auto& [stored, after] : batch.changes) write_change(connection, stored, after);
    for (const auto& change : batch.history) write_history(connection, change);
    return;
  }
  // A status and an event time are most of what a batch changes: one statement each for every
  // plan of the batch (each column SET is a write to each index over it, so the time-only
  // changes leave status out). Other changes are written plan by plan.
  // PostgreSQL reads the rows as records of the table (jsonb_populate_recordset), which spells
  // each value in its column's type. It guesses 100 rows from a function and would scan every
  // plan to hash-join them: the ids as an array make it look each one up in the primary key.
  static constexpr sql::Query kUpdateStatuses =
      "WITH r AS MATERIALIZED (SELECT * FROM jsonb_populate_recordset(NULL::plans, ?::jsonb)) "
      "UPDATE plans SET status = r.status, last_event_created = r.last_event_created, "
      "updated_at = r.updated_at FROM r WHERE plans.id = r.id "
      "AND plans.id = ANY(ARRAY(SELECT id FROM r))";
  static constexpr sql::Query kUpdateEventTimes =
      "WITH r AS MATERIALIZED (SELECT * FROM jsonb_populate_recordset(NULL::plans, ?::jsonb)) "
      "UPDATE plans SET last_event_created = r.last_event_created, updated_at = r.updated_at "
      "FROM r WHERE plans.id = r.id AND plans.id = ANY(ARRAY(SELECT id FROM r))";
  static constexpr sql::Query kAppendHistory =
      "INSERT INTO plan_update_history (" BILLING_HISTORY_COLUMNS
      ") SELECT " BILLING_HISTORY_COLUMNS
      " FROM jsonb_populate_recordset(NULL::plan_update_history, ?::jsonb) WITH ORDINALITY "
      "ORDER BY ordinality";
  JsonRows statuses, event_times, history;
  for (const auto& [stored, after] : batch.changes) {
    const auto move = stored ? plan_move(*stored, after) : PlanMove::more;
    if (move == PlanMove::more) {
      write_plan(connection, after);
      continue;
    }
    const auto updated_at = iso8601_micros(after.updated_at);
    if (move == PlanMove::status)
      statuses.add({{"id", after.id},
                    {"status", name_of(after.status)},
                    {"last_event_created", optional_param(after.last_event_created)},
                    {"updated_at", updated_at}});
    else
      event_times.add({{"id", after.id},
                       {"last_event_created", optional_param(after.last_event_created)},
                       {"updated_at", updated_at}});
  }
  for (const auto& c : batch.history)
    history.add({{"plan_id", c.plan_id},
                 {"hospital_id", owner_column(c.owner, EntityKind::hospital)},
                 {"individual_id", owner_column(c.owner, EntityKind::individual)},
                 {"changed_by", c.changed_by},
                 {"changed_at", iso8601_micros(c.changed_at)},
                 {"from_plan_type", optional_enum(c.from_plan_type)},
                 {"to_plan_type", name_of(c.to_plan_type)},
                 {"from_status", optional_enum(c.from_status)},
                 {"to_status", name_of(c.to_status)},
                 {"from_services", encode_services(c.from_services)},
                 {"to_services", encode_services(c.to_services)},
                 {"reason", c.reason}});
  write_rows(connection, kUpdateStatuses, statuses);
  write_rows(connection, kUpdateEventTimes, event_times);
  write_rows(connection, kAppendHistory, history);
}

#undef BILLING_HISTORY_COLUMNS

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

void SqlPlanRepo::save_other_subscription(const OtherSubscription& other) {
  static constexpr sql::Query kSave =
      "INSERT INTO other_subscriptions (id, role, role_entity_id, status, plan_type, "
      "billing_cycle, created, last_event_created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET status = excluded.status, plan_type = excluded.plan_type, "
      "billing_cycle = excluded.billing_cycle, last_event_created = excluded.last_event_created";
  db_.run_later(kSave, {other.id, name_of(other.owner.kind), other.owner.id, other.status,
                        name_of(other.plan_type), name_of(other.cycle), other.created,
                        other.last_event_created});
}

#define BILLING_OTHER_COLUMNS \
  "id, role, role_entity_id, status, plan_type, billing_cycle, created, last_event_created"

std::vector<OtherSubscription> SqlPlanRepo::other_subscriptions_where(
    const sql::Query& query, std::initializer_list<sql::Param> params) {
  std::vector<OtherSubscription> found;
  db_.run(query, params, [&](const sql::Row& row) {
    found.push_back(OtherSubscription{
        .id = std::string(row.text(0)),
        .owner = {decode_enum<EntityKind>(row.text(1)), std::string(row.text(2))},
        .status = std::string(row.text(3)),
        .plan_type = decode_enum<PlanType>(row.text(4)),
        .cycle = decode_enum<BillingCycle>(row.text(5)),
        .created = row.integer(6),
        .last_event_created = row.integer(7),
    });
  });
  return found;
}

std::optional<OtherSubscription> SqlPlanRepo::find_other_subscription(std::string_view id) {
  static constexpr sql::Query kFind =
      "SELECT " BILLING_OTHER_COLUMNS " FROM other_subscriptions WHERE id = ?";
  auto found = other_subscriptions_where(kFind, {id});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::vector<OtherSubscription> SqlPlanRepo::other_subscriptions(const EntityRef& owner) {
  static constexpr sql::Query kOwners =
      "SELECT " BILLING_OTHER_COLUMNS
      " FROM other_subscriptions "
      "WHERE role = ? AND role_entity_id = ? ORDER BY created DESC, id DESC";
  return other_subscriptions_where(kOwners, {name_of(owner.kind), owner.id});
}

#undef BILLING_OTHER_COLUMNS

void SqlPlanRepo::drop_other_subscription(std::string_view id) {
  static constexpr sql::Query kDrop = "DELETE FROM other_subscriptions WHERE id = ?";
  db_.run_later(kDrop, {id});
}

}  // namespace billing
