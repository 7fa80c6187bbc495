#pragma once
#include "payments/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// What the units of one group-commit batch share: the audit rows they leave to its end (see
// PlanBatch), and the claims and payments they queued, in the order they queued them.
struct PaymentBatch {
  struct Queued {
    std::string key;        // the claim's event id, the payment's invoice id
    bool done = false;      // a row came back: the event was claimed, the payment recorded
    bool answered = false;  // claim_event or record_payment took it
  };
  std::vector<AuditEntry> entries;
  std::vector<Queued> claims;
  std::vector<Queued> payments;
};

// PaymentRepo over either SQL backend: webhook_events, stripe_audit, payments.
class SqlPaymentRepo : public PaymentRepo {
 public:
  // With a batch, audit rows wait in it for the batch's end (write_batch), and claims and
  // payments are queued there.
  explicit SqlPaymentRepo(sql::Connection& connection, PaymentBatch* batch = nullptr)
      : db_(connection), batch_(batch) {}

  bool claim_event(const InboxEvent& event, TimePoint now) override;
  void queue_claim(const InboxEvent& event, TimePoint now) override;
  void record_event_failure(const InboxEvent& event, std::string_view error,
                            TimePoint now) override;
  std::optional<InboxRecord> inbox_record(std::string_view event_id) override;
  std::vector<StoredEvent> failed_events(std::size_t limit) override;
  void append_audit(const AuditEntry& entry) override;
  std::vector<AuditEntry> audit_entries(std::string_view event_id) override;
  bool record_payment(const Payment& payment) override;
  void queue_payment(const Payment& payment) override;
  void withdraw_queued_payment(std::string_view invoice_id) override;
  void link_checkout(std::string_view checkout_session_id, std::string_view invoice_id) override;
  std::vector<Payment> payments(const EntityRef& entity) override;
  bool paid_through(const EntityRef& entity, PaidThrough through, std::string_view id) override;
  bool complete_payment(std::string_view invoice_id, const ChargeDetails& details) override;
  bool payment_recorded(std::string_view invoice_id) override;
  std::vector<ChargeToComplete> payments_without_fee(std::size_t limit) override;
  std::optional<ChargeToComplete> payment_without_fee(std::string_view invoice_id) override;
  void request_subscription_check(std::string_view subscription_id,
                                  std::int64_t event_created) override;
  std::optional<SubscriptionCheck> subscription_check(std::string_view subscription_id) override;
  std::vector<SubscriptionCheck> subscription_checks(
      std::size_t limit, const std::optional<SubscriptionCheck>& after) override;
  bool take_subscription_check(const SubscriptionCheck& check) override;

  // Writes the audit rows the batch's units left to its end.
  static void write_batch(sql::Connection& connection, const PaymentBatch& batch);

 private:
  // The first queued entry for `key` not yet answered, now answered; null if none.
  PaymentBatch::Queued* answer_queued(std::vector<PaymentBatch::Queued>& queued,
                                      std::string_view key);
  static void write_audit(sql::Connection& connection, const AuditEntry& entry);
  // Sends the insert of `payment`; `inserted` is called if it recorded the payment (the invoice
  // had none): now, or by the next round trip when `later`.
  void insert_payment(const Payment& payment, std::function<void(const sql::Row&)> inserted,
                      bool later);

  sql::Connection& db_;
  PaymentBatch* batch_;
};

}  // namespace billing
