#include "storage/commit_batch.hpp"

#include <algorithm>
#include <tuple>

#include "kit/json.hpp"
#include "kit/time.hpp"
#include "payments/types.hpp"
#include "storage/codec.hpp"
#include "storage/plan_store.hpp"

namespace billing {
namespace {

// Appends one row, a JSON array of its columns, to `rows`: a JSON array that `closed` ends.
// Both backends read such an array in one statement (SQLite's json_each, PostgreSQL's
// json_array_elements), so a batch's rows of one table take one statement whatever their number.
class JsonRow {
 public:
  explicit JsonRow(std::string& rows) : out_(rows) {
    out_.push_back(out_.empty() ? '[' : ',');
    out_.push_back('[');
  }
  ~JsonRow() { out_.push_back(']'); }
  JsonRow(const JsonRow&) = delete;
  JsonRow& operator=(const JsonRow&) = delete;

  JsonRow& text(std::string_view s) {
    next();
    append_json_string(out_, s);
    return *this;
  }
  JsonRow& time(TimePoint t) {
    next();
    out_.push_back('"');
    append_iso8601_micros(out_, t);
    out_.push_back('"');
    return *this;
  }
  JsonRow& integer(std::optional<std::int64_t> n) {
    next();
    out_ += n ? std::to_string(*n) : "null";
    return *this;
  }
  JsonRow& nullable(const std::optional<std::string>& s) { return s ? text(*s) : null(); }
  JsonRow& nullable(const std::optional<TimePoint>& t) { return t ? time(*t) : null(); }
  template <class E>
  JsonRow& name(std::optional<E> value) {
    return value ? text(name_of(*value)) : null();
  }
  JsonRow& owner_column(const EntityRef& owner, EntityKind column) {
    return owner.kind == column ? text(owner.id) : null();
  }

 private:
  void next() {
    if (std::exchange(first_, false)) return;
    out_.push_back(',');
  }
  JsonRow& null() {
    next();
    out_ += "null";
    return *this;
  }

  std::string& out_;
  bool first_ = true;
};

// Queues `query` over the rows gathered in `rows`, if any.
void write_rows(sql::Connection& db, const sql::Query& query, std::string& rows) {
  if (rows.empty()) return;
  rows.push_back(']');
  db.run_later(query, {std::string_view(rows)});
}

}  // namespace

std::string key_list(sql::Dialect dialect, const std::vector<std::string>& values) {
  if (dialect == sql::Dialect::sqlite) {
    std::string out = "[";
    for (const auto& v : values) {
      if (out.size() > 1) out.push_back(',');
      append_json_string(out, v);
    }
    out.push_back(']');
    return out;
  }
  std::string out = "{";
  for (const auto& v : values) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    for (char c : v) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

namespace {

bool contains(const std::vector<std::string>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

void add_once(std::vector<std::string>& values, std::string_view value) {
  if (!contains(values, value)) values.emplace_back(value);
}

}  // namespace

void CommitBatch::expect_event(const InboxEvent& event, TimePoint now) {
  for (const auto& expected : expected_events_)
    if (expected.event.id == event.id) return;  // a copy delivered beside it: claimed once
  expected_events_.push_back({event, now});
}

void CommitBatch::expect_payment(std::string_view invoice_id) {
  add_once(expected_invoices_.values, invoice_id);
}

void CommitBatch::expect_plan(PlanKey key, std::string_view value) {
  add_once(expected_plans_[static_cast<std::size_t>(key)].values, value);
}

void CommitBatch::read_ahead(sql::Connection& db) {
  // As SqlPaymentRepo::claim_event, for every event at once; in the order of their ids, so that
  // two batches claiming some of the same events (two replicas) lock them in the same order.
  static constexpr sql::Query kClaim{
      "INSERT INTO webhook_events (event_id, event_type, created, payload, status, attempts, "
      "received_at, processed_at) SELECT value->>0, value->>1, value->>2, value->>3, "
      "'processed', 1, value->>4, value->>4 FROM json_each(?) WHERE true ORDER BY value->>0 "
      "ON CONFLICT (event_id) DO UPDATE SET status = 'processed', "
      "attempts = webhook_events.attempts + 1, last_error = NULL, "
      "processed_at = excluded.processed_at WHERE webhook_events.status <> 'processed' "
      "RETURNING event_id",
      "INSERT INTO webhook_events (event_id, event_type, created, payload, status, attempts, "
      "received_at, processed_at) SELECT r->>0, r->>1, (r->>2)::bigint, r->>3, 'processed', 1, "
      "(r->>4)::timestamptz, (r->>4)::timestamptz FROM jsonb_array_elements(?::jsonb) AS r "
      "ORDER BY r->>0 ON CONFLICT (event_id) DO UPDATE SET status = 'processed', "
      "attempts = webhook_events.attempts + 1, last_error = NULL, "
      "processed_at = excluded.processed_at WHERE webhook_events.status <> 'processed' "
      "RETURNING event_id"};
  static constexpr sql::Query kRecorded{
      "SELECT stripe_invoice_id FROM payments "
      "WHERE stripe_invoice_id IN (SELECT value FROM json_each(?))",
      "SELECT stripe_invoice_id FROM payments WHERE stripe_invoice_id = ANY(?::text[])"};
  // The three statements go out together (one round trip on PostgreSQL), their rows read once
  // all have run (settle).
  const auto claimed = [&](const sql::Row& row) { claimed_events_.emplace_back(row.text(0)); };
  const auto recorded = [&](const sql::Row& row) { recorded_invoices_.emplace_back(row.text(0)); };
  const auto read_plan = [&](const sql::Row& row) {
    const Plan plan = SqlPlanRepo::decode_plan(row);
    if (!holds_plan(plan.id)) remember_plan(plan);
  };
  if (!expected_events_.empty()) {
    std::string rows;
    for (const auto& [event, now] : expected_events_)
      JsonRow(rows)
          .text(event.id)
          .text(event.type)
          .integer(event.created)
          .text(event.payload)
          .time(now);
    rows.push_back(']');
    db.run_later(kClaim, {std::string_view(rows)}, claimed);
  }
  if (!expected_invoices_.values.empty())
    db.run_later(kRecorded, {key_list(db.dialect(), expected_invoices_.values)}, recorded);
  const bool plans_expected = std::any_of(expected_plans_.begin(), expected_plans_.end(),
                                          [](const Expected& e) { return !e.values.empty(); });
  if (plans_expected) {
    std::array<std::string, 4> keys;
    for (std::size_t i = 0; i < keys.size(); ++i)
      keys[i] = key_list(db.dialect(), expected_plans_[i].values);
    db.run_later(SqlPlanRepo::plans_by_keys(), {keys[0], keys[1], keys[2], keys[3]}, read_plan);
  }
  db.settle();
  expected_invoices_.read = true;
  for (auto& expected : expected_plans_) expected.read = true;
}

std::optional<bool> CommitBatch::claim_event(std::string_view event_id) {
  const bool expected = std::any_of(expected_events_.begin(), expected_events_.end(),
                                    [&](const ExpectedEvent& e) { return e.event.id == event_id; });
  if (!expected) return std::nullopt;
  const auto claimed = std::find(claimed_events_.begin(), claimed_events_.end(), event_id);
  if (claimed == claimed_events_.end()) return false;  // processed before, or by a unit before
  claimed_events_.erase(claimed);
  return true;
}

std::optional<bool> CommitBatch::record_payment(const Payment& p) {
  if (!expected_invoices_.read || !p.invoice_id ||
      !contains(expected_invoices_.values, *p.invoice_id))
    return std::nullopt;
  if (contains(recorded_invoices_, *p.invoice_id)) return false;
  recorded_invoices_.push_back(*p.invoice_id);
  JsonRow(payment_rows_)
      .nullable(p.checkout_session_id)
      .nullable(p.customer_id)
      .nullable(p.subscription_id)
      .nullable(p.invoice_id)
      .nullable(p.payment_intent_id)
      .nullable(p.charge_id)
      .text(name_of(p.entity.kind))
      .text(p.entity.id)
      .name(p.plan_type)
      .name(p.cycle)
      .integer(p.amount)
      .text(p.currency)
      .integer(p.net_amount)
      .integer(p.fee_amount)
      .nullable(p.payment_method)
      .nullable(p.paid_at)
      .time(p.created_at);
  return true;
}

void CommitBatch::append_audit(const AuditEntry& e) {
  JsonRow(audit_rows_)
      .text(e.event_id)
      .text(e.event_type)
      .text(e.payload)
      .text(name_of(e.status))
      .text(e.note)
      .time(e.created_at);
}

void CommitBatch::append_history(const PlanChange& c) {
  JsonRow(history_rows_)
      .text(c.plan_id)
      .owner_column(c.owner, EntityKind::hospital)
      .owner_column(c.owner, EntityKind::individual)
      .text(c.changed_by)
      .time(c.changed_at)
      .name(c.from_plan_type)
      .text(name_of(c.to_plan_type))
      .name(c.from_status)
      .text(name_of(c.to_status))
      .text(encode_services(c.from_services))
      .text(encode_services(c.to_services))
      .text(c.reason);
}

const Plan* CommitBatch::cached_plan(FunctionRef<bool(const Plan&)> matches) const {
  for (const auto& plan : plans_)
    if (matches(plan.current)) return &plan.current;
  return nullptr;
}

bool CommitBatch::plans_read(PlanKey key, std::string_view value) const {
  const auto& expected = expected_plans_[static_cast<std::size_t>(key)];
  return expected.read && contains(expected.values, value);
}

bool CommitBatch::holds_plan(std::string_view plan_id) const {
  return std::any_of(plans_.begin(), plans_.end(),
                     [&](const CachedPlan& p) { return p.current.id == plan_id; });
}

void CommitBatch::remember_plan(const Plan& stored) {
  plans_.push_back({stored, stored});
}

bool CommitBatch::change_plan(const Plan& after) {
  for (auto& plan : plans_)
    if (plan.current.id == after.id) {
      plan.current = after;
      return true;
    }
  return false;
}

void CommitBatch::write(sql::Connection& db) {
  static constexpr sql::Query kAppendAudit{
      "INSERT INTO stripe_audit (event_id, event_type, payload, status, note, created_at) "
      "SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 "
      "FROM json_each(?) ORDER BY key",
      "INSERT INTO stripe_audit (event_id, event_type, payload, status, note, created_at) "
      "SELECT r->>0, r->>1, (r->>2)::jsonb, r->>3, r->>4, (r->>5)::timestamptz "
      "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS rows(r, n) ORDER BY n"};
  static constexpr sql::Query kAppendHistory{
      "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
      "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
      "to_services, reason) SELECT value->>0, value->>1, value->>2, value->>3, value->>4, "
      "value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11 "
      "FROM json_each(?) ORDER BY key",
      "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
      "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
      "to_services, reason) SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::timestamptz, r->>5, "
      "r->>6, r->>7, r->>8, r->>9, r->>10, r->>11 "
      "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS rows(r, n) ORDER BY n"};
  static constexpr sql::Query kRecordPayments{
      "INSERT INTO payments (stripe_checkout_session_id, stripe_customer_id, "
      "stripe_subscription_id, stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, "
      "role, role_entity_id, plan_type, cycle, amount, currency, net_amount, fee_amount, "
      "payment_method, paid_at, created_at) SELECT value->>0, value->>1, value->>2, value->>3, "
      "value->>4, value->>5, value->>6, value->>7, value->>8, value->>9, value->>10, value->>11, "
      "value->>12, value->>13, value->>14, value->>15, value->>16 FROM json_each(?) WHERE true "
      "ORDER BY key ON CONFLICT (stripe_invoice_id) DO NOTHING",
      "INSERT INTO payments (stripe_checkout_session_id, stripe_customer_id, "
      "stripe_subscription_id, stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, "
      "role, role_entity_id, plan_type, cycle, amount, currency, net_amount, fee_amount, "
      "payment_method, paid_at, created_at) SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, "
      "r->>6, r->>7, r->>8, r->>9, (r->>10)::bigint, r->>11, (r->>12)::bigint, "
      "(r->>13)::bigint, (r->>14)::jsonb, (r->>15)::timestamptz, (r->>16)::timestamptz "
      "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS rows(r, n) ORDER BY n "
      "ON CONFLICT (stripe_invoice_id) DO NOTHING"};
  write_plans(db);
  write_rows(db, kRecordPayments, payment_rows_);
  write_rows(db, kAppendHistory, history_rows_);
  write_rows(db, kAppendAudit, audit_rows_);
}

void CommitBatch::write_plans(sql::Connection& db) {
  // As SqlPlanRepo::update_plan: a column left out of SET is an index left alone.
  static constexpr sql::Query kUpdateStatus{
      "UPDATE plans SET status = r.value->>1, last_event_created = r.value->>2, "
      "updated_at = r.value->>3 FROM json_each(?) AS r "
      "WHERE plans.id = r.value->>0 AND plans.id IN (SELECT value FROM json_each(?))",
      "UPDATE plans SET status = r->>1, last_event_created = (r->>2)::bigint, "
      "updated_at = (r->>3)::timestamptz FROM jsonb_array_elements(?::jsonb) AS r "
      "WHERE plans.id = r->>0 AND plans.id = ANY(?::text[])"};
  static constexpr sql::Query kUpdateEventTime{
      "UPDATE plans SET last_event_created = r.value->>1, updated_at = r.value->>2 "
      "FROM json_each(?) AS r "
      "WHERE plans.id = r.value->>0 AND plans.id IN (SELECT value FROM json_each(?))",
      "UPDATE plans SET last_event_created = (r->>1)::bigint, "
      "updated_at = (r->>2)::timestamptz FROM jsonb_array_elements(?::jsonb) AS r "
      "WHERE plans.id = r->>0 AND plans.id = ANY(?::text[])"};
  // The ids again, as a list of keys: the planner cannot see into the JSON rows, and with the
  // list it finds the plans by their index instead of scanning the table.
  std::string status_rows, event_time_rows;
  std::vector<std::string> status_ids, event_time_ids;
  for (const auto& [stored, current] : plans_) {
    if (current == stored) continue;
    if (!only_status_moved(stored, current)) {
      SqlPlanRepo(db).save_plan(current);
    } else if (current.status != stored.status) {
      status_ids.push_back(current.id);
      JsonRow(status_rows)
          .text(current.id)
          .text(name_of(current.status))
          .integer(current.last_event_created)
          .time(current.updated_at);
    } else {
      event_time_ids.push_back(current.id);
      JsonRow(event_time_rows)
          .text(current.id)
          .integer(current.last_event_created)
          .time(current.updated_at);
    }
  }
  for (auto [query, rows, ids] : {std::tuple{&kUpdateStatus, &status_rows, &status_ids},
                                  std::tuple{&kUpdateEventTime, &event_time_rows, &event_time_ids}})
    if (!rows->empty()) {
      rows->push_back(']');
      db.run_later(*query, {std::string_view(*rows), key_list(db.dialect(), *ids)});
    }
}

}  // namespace billing
