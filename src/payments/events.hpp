#pragma once
// Stripe's webhook events and what each does to plans and payments. Everything here runs inside
// one unit of work per event (Db::transact_grouped), so an event's effects, its audit row and its
// inbox record commit together or not at all.
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/db.hpp"
#include "payments/price_map.hpp"
#include "payments/types.hpp"
#include "plans/catalog.hpp"

namespace billing {

struct StripeEvent {
  std::string id;
  std::string type;
  std::int64_t created = 0;    // Unix seconds
  std::string api_version;     // the Stripe API version it is rendered at; "" if it says none
  boost::json::object object;  // data.object
  std::string_view payload;    // the raw bytes, as signed
  // Made of the subscription's state as the provider gave it (payments/subscription_checks.hpp),
  // not sent by it: it settles a tie, and asks for no check of its own.
  bool from_provider = false;

  InboxEvent inbox() const { return {id, type, created, payload}; }
};

// The latest `created` an event may have (2200-01-01): past any real event, and a time every
// TimePoint (64-bit nanoseconds, to 2262) holds.
inline constexpr std::int64_t kLatestCreated = 7'258'118'400;

// The event in `payload` (already verified). 400 "Invalid webhook payload" when it is not an
// event: not JSON, or no string id and type, or no created from 1970 to kLatestCreated, or no
// data.object.
StripeEvent parse_event(std::string_view payload);

struct EventRules {
  const Catalog& catalog;
  const PriceMap& prices;
};

// Applies `event` once, in a grouped unit of its own (prepare_event, then apply_event): a second
// delivery of the same id (even concurrent) changes nothing and is audited as a duplicate. A
// state change older than the newest event already applied to the plan is skipped (audited as
// stale); a payment is recorded whatever the order. Throws on a failure the caller must answer
// 500 to (so that Stripe retries).
// Two customer.subscription.updated events of one subscription that carry the same `created`
// second and disagree cannot be ordered: the later delivered is applied, and the tie is recorded
// (PaymentRepo::request_subscription_check) for the provider's state to settle it.
boost::asio::awaitable<AuditStatus> apply_grouped(Db& db, const EventRules& rules,
                                                  const StripeEvent& event, TimePoint now);

// The two parts of the unit, for apply_grouped, and for a unit of another kind that runs both in
// turn. prepare_event sends ahead what applying the event needs first (its owner's lock, the
// owner's plan, the event's claim in the inbox, a paid invoice's payment); a batch sends every
// unit's in one round trip. False when the owner is found, and locked, only as the event
// applies (no metadata names it).
bool prepare_event(Tx& tx, const EventRules& rules, const StripeEvent& event, TimePoint now);
AuditStatus apply_event(Tx& tx, const EventRules& rules, const StripeEvent& event, TimePoint now);

// The writer affinity of the event (Db::transact_grouped): a hash of the entity named by the
// metadata its effects read, else of the subscription, the customer, the event itself. Events of
// one plan share a writer, and the owners' locks (prepare_event) go in ascending affinity, one
// order for every writer and replica. Deadlocks remain possible where a lock is taken out of
// that order: an event without metadata locks the owner it finds while it runs, and inbox rows
// are claimed in arrival order (one event delivered to two replicas at once). PostgreSQL breaks
// them by failing one side: a batch of several runs again unit by unit; a lone unit answers 500,
// and Stripe retries.
std::size_t event_affinity(const StripeEvent& event);

// The payload of the event's stripe_audit rows: what identifies it (id, type, created, the id and
// kind of its object). The raw bytes are kept once, in the inbox (webhook_events, by event id):
// writing them twice cost the webhook writer a fifth of its throughput.
std::string audit_payload(const StripeEvent& event);

}  // namespace billing
