#include "storage/payment_store.hpp"

#include <limits>
#include <string>

#include "kit/crypto.hpp"
#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {

namespace {

// The upsert takes the event's row lock: a second delivery of the same id, in another transaction
// or on another replica, waits there until the first commits, then sees it processed and claims
// nothing (a row comes back only to the one that claims it).
constexpr sql::Query kClaim =
    "INSERT INTO webhook_events (event_id, event_type, created, payload, status, attempts, "
    "received_at, processed_at) VALUES (?, ?, ?, ?, 'processed', 1, ?, ?) "
    "ON CONFLICT (event_id) DO UPDATE SET status = 'processed', "
    "attempts = webhook_events.attempts + 1, last_error = NULL, "
    "processed_at = excluded.processed_at WHERE webhook_events.status <> 'processed' "
    "RETURNING attempts";

using RowCallback = std::function<void(const sql::Row&)>;

// Adds an entry for `key` to `queued` and sends its statement through `send`, with a callback that
// marks the entry done when a row comes back (the event claimed, the payment recorded); takes the
// entry out again if sending throws, since there will be no answer to give.
void queue(std::vector<PaymentBatch::Queued>& queued, std::string key,
           FunctionRef<void(RowCallback)> send) {
  queued.push_back({.key = std::move(key)});
  try {
    send([&queued, i = queued.size() - 1](const sql::Row&) { queued[i].done = true; });
  } catch (...) {
    queued.pop_back();
    throw;
  }
}

// A row of (stripe_invoice_id, stripe_charge_id, amount).
ChargeToComplete charge_to_complete(const sql::Row& row) {
  return {std::string(row.text(0)), optional_text(row, 1), row.integer(2)};
}

}  // namespace

PaymentBatch::Queued* SqlPaymentRepo::answer_queued(std::vector<PaymentBatch::Queued>& queued,
                                                    std::string_view key) {
  for (auto& entry : queued)
    if (!entry.answered && entry.key == key) {
      db_.settle();  // its row, if any, has come
      entry.answered = true;
      return &entry;
    }
  return nullptr;
}

bool SqlPaymentRepo::claim_event(const InboxEvent& event, TimePoint now) {
  if (batch_)
    if (const auto* claim = answer_queued(batch_->claims, event.id)) return claim->done;
  const auto at = iso8601_micros(now);
  bool claimed = false;
  db_.run(kClaim, {event.id, event.type, event.created, event.payload, at, at},
          [&](const sql::Row&) { claimed = true; });
  return claimed;
}

void SqlPaymentRepo::queue_claim(const InboxEvent& event, TimePoint now) {
  if (!batch_) return;
  const auto at = iso8601_micros(now);
  queue(batch_->claims, std::string(event.id), [&](RowCallback claimed) {
    db_.read_later(kClaim, {event.id, event.type, event.created, event.payload, at, at},
                   std::move(claimed));
  });
}

void SqlPaymentRepo::record_event_failure(const InboxEvent& event, std::string_view error,
                                          TimePoint now) {
  static constexpr sql::Query kFail =
      "INSERT INTO webhook_events (event_id, event_type, created, payload, status, attempts, "
      "last_error, received_at) VALUES (?, ?, ?, ?, 'failed', 1, ?, ?) "
      "ON CONFLICT (event_id) DO UPDATE SET status = 'failed', "
      "attempts = webhook_events.attempts + 1, last_error = excluded.last_error "
      "WHERE webhook_events.status <> 'processed'";
  db_.run(kFail, {event.id, event.type, event.created, event.payload, error, iso8601_micros(now)});
}

std::vector<StoredEvent> SqlPaymentRepo::failed_events(std::size_t limit) {
  static constexpr sql::Query kFailed =
      "SELECT event_id, payload FROM webhook_events WHERE status = 'failed' "
      "ORDER BY received_at, event_id LIMIT ?";
  std::vector<StoredEvent> events;
  db_.run(kFailed, {static_cast<std::int64_t>(limit)}, [&](const sql::Row& row) {
    events.push_back({std::string(row.text(0)), std::string(row.text(1))});
  });
  return events;
}

std::optional<InboxRecord> SqlPaymentRepo::inbox_record(std::string_view event_id) {
  static constexpr sql::Query kFind{
      "SELECT status, attempts, last_error, event_type, created, received_at, processed_at "
      "FROM webhook_events WHERE event_id = ?",
      "SELECT status, attempts, last_error, event_type, created, " BILLING_PG_ISO8601(
          "received_at") ", " BILLING_PG_ISO8601("processed_at") " FROM webhook_events "
                                                                 "WHERE event_id = ?"};
  std::optional<InboxRecord> record;
  db_.run(kFind, {event_id}, [&](const sql::Row& row) {
    record.emplace(InboxRecord{
        .status = decode_enum<InboxStatus>(row.text(0)),
        .attempts = static_cast<int>(row.integer(1)),
        .last_error = optional_text(row, 2),
        .type = std::string(row.text(3)),
        .created = row.integer(4),
        .received_at = decode_time(row.text(5)),
        .processed_at = row.is_null(6) ? std::nullopt : std::optional(decode_time(row.text(6)))});
  });
  return record;
}

void SqlPaymentRepo::append_audit(const AuditEntry& entry) {
  if (batch_) return batch_->entries.push_back(entry);
  write_audit(db_, entry);
}

void SqlPaymentRepo::write_audit(sql::Connection& connection, const AuditEntry& e) {
  static constexpr sql::Query kAppend =
      "INSERT INTO stripe_audit (event_id, event_type, payload, status, note, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?)";
  connection.run_later(kAppend, {e.event_id, e.event_type, e.payload, name_of(e.status), e.note,
                                 iso8601_micros(e.created_at)});
}

void SqlPaymentRepo::write_batch(sql::Connection& connection, const PaymentBatch& batch) {
  // A claim no unit took would commit its event as processed, with nothing applied.
  for (const auto& claim : batch.claims)
    if (!claim.answered) throw std::logic_error("a unit queued a claim it did not take");
  if (!writes_rows_as_one(connection)) {
    for (const auto& entry : batch.entries) write_audit(connection, entry);
    return;
  }
  static constexpr sql::Query kAppend =
      "INSERT INTO stripe_audit (event_id, event_type, payload, status, note, created_at) "
      "SELECT r->>'event_id', r->>'event_type', (r->>'payload')::jsonb, r->>'status', "
      "r->>'note', (r->>'created_at')::timestamptz "
      "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS e(r, n) ORDER BY n";
  JsonRows rows;
  for (const auto& e : batch.entries)
    rows.add({{"event_id", e.event_id},
              {"event_type", e.event_type},
              {"payload", e.payload},
              {"status", name_of(e.status)},
              {"note", e.note},
              {"created_at", iso8601_micros(e.created_at)}});
  write_rows(connection, kAppend, rows);
}

std::vector<AuditEntry> SqlPaymentRepo::audit_entries(std::string_view event_id) {
  // PostgreSQL keeps the payload as JSONB, which prints it normalised: the inbox keeps the bytes.
  static constexpr sql::Query kList{
      "SELECT event_id, event_type, payload, status, note, created_at FROM stripe_audit "
      "WHERE event_id = ? ORDER BY id",
      "SELECT event_id, event_type, payload::text, status, note, " BILLING_PG_ISO8601(
          "created_at") " FROM stripe_audit WHERE event_id = ? ORDER BY id"};
  std::vector<AuditEntry> entries;
  db_.run(kList, {event_id}, [&](const sql::Row& row) {
    entries.push_back(AuditEntry{.event_id = std::string(row.text(0)),
                                 .event_type = std::string(row.text(1)),
                                 .payload = std::string(row.text(2)),
                                 .status = decode_enum<AuditStatus>(row.text(3)),
                                 .note = std::string(row.text(4)),
                                 .created_at = decode_time(row.text(5))});
  });
  return entries;
}

void SqlPaymentRepo::insert_payment(const Payment& p, std::function<void(const sql::Row&)> inserted,
                                    bool later) {
  static constexpr sql::Query kRecord =
      "INSERT INTO payments (stripe_checkout_session_id, stripe_customer_id, "
      "stripe_subscription_id, stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, "
      "role, role_entity_id, plan_type, cycle, amount, currency, net_amount, fee_amount, "
      "payment_method, paid_at, created_at) "
      "VALUES (COALESCE(?, (SELECT checkout_session_id FROM checkout_invoices WHERE invoice_id = "
      "?)), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (stripe_invoice_id) DO NOTHING RETURNING 1";
  const std::optional<std::string> paid_at =
      p.paid_at ? std::optional(iso8601_micros(*p.paid_at)) : std::nullopt;
  const auto created_at = iso8601_micros(p.created_at);
  const std::initializer_list<sql::Param> params{optional_param(p.checkout_session_id),
                                                 optional_param(p.invoice_id),
                                                 optional_param(p.customer_id),
                                                 optional_param(p.subscription_id),
                                                 optional_param(p.invoice_id),
                                                 optional_param(p.payment_intent_id),
                                                 optional_param(p.charge_id),
                                                 name_of(p.entity.kind),
                                                 p.entity.id,
                                                 optional_enum(p.plan_type),
                                                 optional_enum(p.cycle),
                                                 p.amount,
                                                 p.currency,
                                                 optional_param(p.net_amount),
                                                 optional_param(p.fee_amount),
                                                 optional_param(p.payment_method),
                                                 optional_param(paid_at),
                                                 created_at};
  if (later)
    db_.read_later(kRecord, params, std::move(inserted));
  else
    db_.run(kRecord, params, inserted);
}

bool SqlPaymentRepo::record_payment(const Payment& p) {
  if (batch_ && p.invoice_id)
    if (const auto* queued = answer_queued(batch_->payments, *p.invoice_id)) return queued->done;
  bool recorded = false;
  insert_payment(
      p, [&](const sql::Row&) { recorded = true; }, false);
  return recorded;
}

void SqlPaymentRepo::queue_payment(const Payment& p) {
  if (!batch_ || !p.invoice_id) return;
  queue(batch_->payments, *p.invoice_id,
        [&](RowCallback recorded) { insert_payment(p, std::move(recorded), true); });
}

void SqlPaymentRepo::withdraw_queued_payment(std::string_view invoice_id) {
  static constexpr sql::Query kRemove = "DELETE FROM payments WHERE stripe_invoice_id = ?";
  if (!batch_) return;
  const auto* queued = answer_queued(batch_->payments, invoice_id);
  if (!queued || !queued->done) return;
  db_.run(kRemove, {invoice_id});
  // Another unit's insert of the invoice, queued behind this one, found the row this one made:
  // it records the payment itself instead (record_payment finds no queued answer).
  for (auto& entry : batch_->payments)
    if (!entry.answered && entry.key == invoice_id) entry.answered = true;
}

void SqlPaymentRepo::link_checkout(std::string_view checkout_session_id,
                                   std::string_view invoice_id) {
  static constexpr sql::Query kLink =
      "INSERT INTO checkout_invoices (invoice_id, checkout_session_id) VALUES (?, ?) "
      "ON CONFLICT (invoice_id) DO NOTHING";
  static constexpr sql::Query kName =
      "UPDATE payments SET stripe_checkout_session_id = ? "
      "WHERE stripe_invoice_id = ? AND stripe_checkout_session_id IS NULL";
  db_.run(kLink, {invoice_id, checkout_session_id});
  db_.run(kName, {checkout_session_id, invoice_id});
}

bool SqlPaymentRepo::complete_payment(std::string_view invoice_id, const ChargeDetails& details) {
  static constexpr sql::Query kComplete =
      "UPDATE payments SET fee_amount = ?, net_amount = ?, "
      "stripe_charge_id = COALESCE(stripe_charge_id, ?), "
      "stripe_payment_intent_id = COALESCE(stripe_payment_intent_id, ?), "
      "payment_method = COALESCE(payment_method, ?) "
      "WHERE stripe_invoice_id = ? AND fee_amount IS NULL";
  return db_.run(kComplete, {details.fee, details.net, optional_param(details.charge_id),
                             optional_param(details.payment_intent_id),
                             optional_param(details.payment_method), invoice_id}) > 0;
}

bool SqlPaymentRepo::payment_recorded(std::string_view invoice_id) {
  static constexpr sql::Query kFind = "SELECT 1 FROM payments WHERE stripe_invoice_id = ?";
  bool found = false;
  db_.run(kFind, {invoice_id}, [&](const sql::Row&) { found = true; });
  return found;
}

std::vector<ChargeToComplete> SqlPaymentRepo::payments_without_fee(std::size_t limit) {
  // A scan: it serves `billing complete-fees`, and an index on a missing fee would cost every
  // payment the webhook records (each starts without its fee).
  static constexpr sql::Query kMissing =
      "SELECT stripe_invoice_id, stripe_charge_id, amount FROM payments WHERE fee_amount IS NULL "
      "AND stripe_invoice_id IS NOT NULL ORDER BY id LIMIT ?";
  std::vector<ChargeToComplete> out;
  db_.run(kMissing, {static_cast<std::int64_t>(limit)},
          [&](const sql::Row& row) { out.push_back(charge_to_complete(row)); });
  return out;
}

std::optional<ChargeToComplete> SqlPaymentRepo::payment_without_fee(std::string_view invoice_id) {
  static constexpr sql::Query kFind =
      "SELECT stripe_invoice_id, stripe_charge_id, amount FROM payments "
      "WHERE stripe_invoice_id = ? AND fee_amount IS NULL";
  std::optional<ChargeToComplete> found;
  db_.run(kFind, {invoice_id}, [&](const sql::Row& row) { found = charge_to_complete(row); });
  return found;
}

void SqlPaymentRepo::request_subscription_check(std::string_view subscription_id,
                                                std::int64_t event_created) {
  static constexpr sql::Query kRequest =
      "INSERT INTO subscription_checks (subscription_id, event_created, token) VALUES (?, ?, ?) "
      "ON CONFLICT (subscription_id) DO UPDATE SET token = excluded.token, "
      "event_created = CASE WHEN excluded.event_created > subscription_checks.event_created "
      "THEN excluded.event_created ELSE subscription_checks.event_created END";
  // 56 random bits: never the same twice in practice, so an answer read under one token never
  // takes a check recorded again after it.
  const std::int64_t token = std::stoll(random_hex(7), nullptr, 16);
  db_.run(kRequest, {subscription_id, event_created, token});
}

std::optional<SubscriptionCheck> SqlPaymentRepo::subscription_check(
    std::string_view subscription_id) {
  static constexpr sql::Query kFind =
      "SELECT event_created, token FROM subscription_checks WHERE subscription_id = ?";
  std::optional<SubscriptionCheck> check;
  db_.run(kFind, {subscription_id}, [&](const sql::Row& row) {
    check.emplace(SubscriptionCheck{std::string(subscription_id), row.integer(0), row.integer(1)});
  });
  return check;
}

std::vector<SubscriptionCheck> SqlPaymentRepo::subscription_checks(
    std::size_t limit, const std::optional<SubscriptionCheck>& after) {
  static constexpr sql::Query kPending =
      "SELECT subscription_id, event_created, token FROM subscription_checks "
      "WHERE event_created > ? OR (event_created = ? AND subscription_id > ?) "
      "ORDER BY event_created, subscription_id LIMIT ?";
  const std::int64_t from = after ? after->event_created : std::numeric_limits<std::int64_t>::min();
  const std::string_view from_id = after ? std::string_view(after->subscription_id) : "";
  std::vector<SubscriptionCheck> out;
  db_.run(kPending, {from, from, from_id, static_cast<std::int64_t>(limit)},
          [&](const sql::Row& row) {
            out.push_back({std::string(row.text(0)), row.integer(1), row.integer(2)});
          });
  return out;
}

bool SqlPaymentRepo::take_subscription_check(const SubscriptionCheck& check) {
  // On PostgreSQL a unit that changed the row (a settle on another replica, a tie recorded) is
  // waited for, and the row is read again as it committed it.
  static constexpr sql::Query kTake =
      "DELETE FROM subscription_checks WHERE subscription_id = ? AND token = ?";
  return db_.run(kTake, {check.subscription_id, check.token}) > 0;
}

std::vector<Payment> SqlPaymentRepo::payments(const EntityRef& entity) {
  static constexpr sql::Query kList{
      "SELECT stripe_checkout_session_id, stripe_customer_id, stripe_subscription_id, "
      "stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, plan_type, cycle, amount, "
      "currency, net_amount, fee_amount, payment_method, paid_at, created_at FROM payments "
      "WHERE role = ? AND role_entity_id = ? ORDER BY id",
      "SELECT stripe_checkout_session_id, stripe_customer_id, stripe_subscription_id, "
      "stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, plan_type, cycle, amount, "
      "currency, net_amount, fee_amount, payment_method::text, " BILLING_PG_ISO8601(
          "paid_at") ", " BILLING_PG_ISO8601("created_at") " FROM payments "
                                                           "WHERE role = ? AND role_entity_id = ? "
                                                           "ORDER BY id"};
  std::vector<Payment> out;
  db_.run(kList, {name_of(entity.kind), entity.id}, [&](const sql::Row& row) {
    out.push_back(Payment{
        .checkout_session_id = optional_text(row, 0),
        .customer_id = optional_text(row, 1),
        .subscription_id = optional_text(row, 2),
        .invoice_id = optional_text(row, 3),
        .payment_intent_id = optional_text(row, 4),
        .charge_id = optional_text(row, 5),
        .entity = entity,
        .plan_type = optional_decoded<PlanType>(row, 6),
        .cycle = optional_decoded<BillingCycle>(row, 7),
        .amount = row.integer(8),
        .currency = std::string(row.text(9)),
        .net_amount = optional_integer(row, 10),
        .fee_amount = optional_integer(row, 11),
        .payment_method = optional_text(row, 12),
        .paid_at = row.is_null(13) ? std::nullopt : std::optional(decode_time(row.text(13))),
        .created_at = decode_time(row.text(14)),
    });
  });
  return out;
}

bool SqlPaymentRepo::paid_through(const EntityRef& entity, PaidThrough through,
                                  std::string_view id) {
  static constexpr sql::Query kBySubscription =
      "SELECT 1 FROM payments WHERE role = ? AND role_entity_id = ? "
      "AND stripe_subscription_id = ? LIMIT 1";
  static constexpr sql::Query kByCustomer =
      "SELECT 1 FROM payments WHERE role = ? AND role_entity_id = ? "
      "AND stripe_customer_id = ? LIMIT 1";
  bool found = false;
  db_.run(through == PaidThrough::subscription ? kBySubscription : kByCustomer,
          {name_of(entity.kind), entity.id, id}, [&](const sql::Row&) { found = true; });
  return found;
}

}  // namespace billing
