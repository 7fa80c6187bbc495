#pragma once
// What the payments domain asks of storage, inside a unit of work (core/db.hpp).
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "payments/types.hpp"

namespace billing {

class PaymentRepo {
 public:
  virtual ~PaymentRepo() = default;

  // Records the event as processed unless it already is: true when this unit is the one to
  // apply it (new, or failed before). Two units claiming one id at once queue on its row.
  virtual bool claim_event(const InboxEvent& event, TimePoint now) = 0;
  // The unit will claim the event soon: storage may claim it along with the unit's next
  // statement (in a group-commit batch, with every unit's first: Db::transact_grouped); the
  // unit's claim_event of the same event then answers from there.
  virtual void queue_claim(const InboxEvent& event, TimePoint now) = 0;
  // Records a failed attempt (status failed, attempts + 1, the error), unless it was processed.
  virtual void record_event_failure(const InboxEvent& event, std::string_view error,
                                    TimePoint now) = 0;
  virtual std::optional<InboxRecord> inbox_record(std::string_view event_id) = 0;
  // Events whose last attempt failed, the earliest received first.
  virtual std::vector<StoredEvent> failed_events(std::size_t limit) = 0;

  virtual void append_audit(const AuditEntry& entry) = 0;
  virtual std::vector<AuditEntry> audit_entries(std::string_view event_id) = 0;  // oldest first

  // False when a payment for the same invoice is already recorded (it is recorded once).
  virtual bool record_payment(const Payment& payment) = 0;
  // The unit will record the payment soon: storage may record it along with the unit's next
  // statement (in a batch, with every unit's first), and record_payment of the same invoice
  // then answers from there. The payment is recorded even if record_payment does not follow:
  // queue only a payment the unit records unless its event turns out a duplicate, and then
  // withdraw it.
  virtual void queue_payment(const Payment& payment) = 0;
  // The unit's event turned out a duplicate: the payment it queued for `invoice_id`, if its
  // statement recorded one, is removed. A true copy's was a no-op (recorded before); this undoes
  // one of an event id that came again with another invoice.
  virtual void withdraw_queued_payment(std::string_view invoice_id) = 0;
  // The checkout session whose first invoice `invoice_id` is: its payment names the session,
  // recorded already or to come.
  virtual void link_checkout(std::string_view checkout_session_id, std::string_view invoice_id) = 0;
  virtual std::vector<Payment> payments(const EntityRef& entity) = 0;  // oldest first
  virtual bool payment_recorded(std::string_view invoice_id) = 0;
  // Whether one of the entity's payments was for that subscription, or by that customer.
  enum class PaidThrough { subscription, customer };
  virtual bool paid_through(const EntityRef& entity, PaidThrough through, std::string_view id) = 0;
  // Fills in the fee, net, and the charge and card (if none) of the invoice's payment; false when
  // there is no such payment or its fee is known already.
  virtual bool complete_payment(std::string_view invoice_id, const ChargeDetails& details) = 0;
  // Payments of an invoice whose fee is not known yet, the earliest recorded first.
  virtual std::vector<ChargeToComplete> payments_without_fee(std::size_t limit) = 0;
  // The invoice's payment, if recorded and its fee is not known yet.
  virtual std::optional<ChargeToComplete> payment_without_fee(std::string_view invoice_id) = 0;

  // Asks that the subscription's state be read from the provider and applied (two of its events
  // tied on `event_created`): the check gets a new token.
  virtual void request_subscription_check(std::string_view subscription_id,
                                          std::int64_t event_created) = 0;
  virtual std::optional<SubscriptionCheck> subscription_check(std::string_view subscription_id) = 0;
  // Up to `limit` checks, the earliest tie first (by tie, then subscription id), after `after`.
  virtual std::vector<SubscriptionCheck> subscription_checks(
      std::size_t limit, const std::optional<SubscriptionCheck>& after = std::nullopt) = 0;
  // Removes the check if it still carries the token read (no tie recorded since); false if not
  // (asked again, or settled meanwhile). A unit changing the check elsewhere is waited for.
  virtual bool take_subscription_check(const SubscriptionCheck& check) = 0;
};

}  // namespace billing
