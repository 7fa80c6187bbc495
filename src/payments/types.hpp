#pragma once
// What the payments domain records: webhook events in the inbox, the audit trail, payments.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/entity.hpp"
#include "core/money.hpp"
#include "core/plan_kinds.hpp"
#include "kit/clock.hpp"

namespace billing {

// A Stripe event as the inbox stores it: the raw payload, as signed.
struct InboxEvent {
  std::string_view id;
  std::string_view type;
  std::int64_t created = 0;  // Stripe's, Unix seconds
  std::string_view payload;
};

enum class InboxStatus { processed, failed };
template <>
struct EnumNames<InboxStatus> {
  static constexpr std::array<std::string_view, 2> names{"processed", "failed"};
};

// A failed event as the inbox keeps it, to apply again.
struct StoredEvent {
  std::string id;
  std::string payload;
};

// An event's row in the inbox (its payload aside).
struct InboxRecord {
  InboxStatus status = InboxStatus::processed;
  int attempts = 0;
  std::optional<std::string> last_error;
  std::string type;
  std::int64_t created = 0;  // Stripe's
  TimePoint received_at;     // first
  std::optional<TimePoint> processed_at;
  friend bool operator==(const InboxRecord&, const InboxRecord&) = default;
};

// One stripe_audit row: every event received, with what became of it.
enum class AuditStatus { ok, duplicate, stale, ignored, failed };
template <>
struct EnumNames<AuditStatus> {
  static constexpr std::array<std::string_view, 5> names{"ok", "duplicate", "stale", "ignored",
                                                         "failed"};
};

struct AuditEntry {
  std::string event_id;
  std::string event_type;
  std::string payload;
  AuditStatus status = AuditStatus::ok;
  std::string note;
  TimePoint created_at;
  friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

// One row of `payments`, with the specification's fields.
struct Payment {
  std::optional<std::string> checkout_session_id;
  std::optional<std::string> customer_id;
  std::optional<std::string> subscription_id;
  std::optional<std::string> invoice_id;
  std::optional<std::string> payment_intent_id;
  std::optional<std::string> charge_id;
  EntityRef entity;
  std::optional<PlanType> plan_type;
  std::optional<BillingCycle> cycle;
  Cents amount = 0;
  std::string currency;
  std::optional<Cents> net_amount;
  std::optional<Cents> fee_amount;
  std::optional<std::string> payment_method;  // JSON: {"type": "card", "card": {...}}
  std::optional<TimePoint> paid_at;
  TimePoint created_at;
  friend bool operator==(const Payment&, const Payment&) = default;
};

// A payment whose fee is not known yet: its invoice, the charge that paid it if the event
// named one (Stripe's invoices of API versions from 2025-03-31 on do not), and its amount.
struct ChargeToComplete {
  std::string invoice_id;
  std::optional<std::string> charge_id;
  Cents amount = 0;
  friend bool operator==(const ChargeToComplete&, const ChargeToComplete&) = default;
};

// What the provider's balance says about the charge that paid an invoice, when its events carry
// the charge's id at most (Stripe's do): the charge, the fee, what is left, and the card. No
// charge: nothing went through the provider (the invoice was paid outside it), no fee.
struct ChargeDetails {
  std::optional<std::string> charge_id;
  std::optional<std::string> payment_intent_id;  // what the event did not name, if known
  Cents fee = 0;
  Cents net = 0;
  std::optional<std::string> payment_method;  // JSON, as Payment::payment_method
};

// A subscription whose state is to be read from the provider: two of its events tied on
// `event_created` (Stripe's `created`, Unix seconds, the latest tie's). `token` is drawn anew at
// each tie recorded: a settle takes the check only as it read it.
struct SubscriptionCheck {
  std::string subscription_id;
  std::int64_t event_created = 0;
  std::int64_t token = 0;
  friend bool operator==(const SubscriptionCheck&, const SubscriptionCheck&) = default;
};

}  // namespace billing
