#pragma once
// The Stripe objects the local provider keeps (in memory, saved to the database by
// LocalProvider), and the table that holds each kind.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kit/api_error.hpp"
#include "payments/local/cards.hpp"
#include "payments/provider.hpp"

namespace billing::local {

// What the ledger sends to the webhook.
struct Event {
  std::string id;
  std::string payload;  // its JSON text, as delivered and signed
};

enum class SessionState { open, awaiting_authentication, complete, expired };

struct CheckoutSession {
  std::string id;
  CheckoutRequest request;  // its customer_id is set once the checkout completes
  std::string plan_name;    // the catalog's, for the page
  Cents amount = 0;
  std::int64_t created = 0;
  SessionState state = SessionState::open;
  std::optional<Card> card_to_confirm;  // awaiting_authentication: the card entered
  // awaiting_authentication: what the bank's question named, what confirming may charge
  std::optional<Cents> due_to_confirm;
  std::string subscription_id;  // complete: the subscription it created
  // complete: what its first invoice charged, the account's balance (a credit, or a debit below
  // the smallest charge) taken in; none for a session saved before this was kept
  std::optional<Cents> amount_paid;
  friend bool operator==(const CheckoutSession&, const CheckoutSession&) = default;
};

// A checkout can be paid for a day after it opened, Stripe's default (its `expires_at`).
inline std::int64_t expires_at(const CheckoutSession& session) {
  return session.created + 24 * 60 * 60;
}

struct Charge {
  std::string id;
  Cents amount = 0;
  bool paid = false;
  Card card;
  friend bool operator==(const Charge&, const Charge&) = default;
};

struct InvoiceRecord {
  Invoice invoice;
  std::string billing_reason;  // subscription_create, subscription_cycle, subscription_update
  // A change of interval's (subscription_update): it bills the new period, where the other
  // subscription_update invoices bill prorations alone.
  bool starts_period = false;
  std::string price_id;
  std::int64_t period_start = 0;
  std::int64_t period_end = 0;
  Metadata metadata;  // the subscription's when it was invoiced
  std::string payment_intent;
  Charge charge;  // the latest attempt
  std::optional<std::int64_t> paid_at;
  int attempt_count = 0;  // charges tried
  // When the card on file is tried again for it, unpaid (Stripe's automatic retries).
  std::optional<std::int64_t> next_payment_attempt;
  friend bool operator==(const InvoiceRecord&, const InvoiceRecord&) = default;
};

// A line of an invoice, or waiting for the customer's next one, as Stripe's invoice items: a price
// changed mid-period makes two (prorations, invoiced at once), the rest of the period at the old
// price as a credit (negative) and at the new price as a charge; a balance carried has no price.
struct InvoiceItem {
  std::string id;
  std::string subscription;
  std::string price_id;  // none: a balance carried over (a credit, or less than a charge)
  Cents amount = 0;
  std::int64_t period_start = 0;
  std::int64_t period_end = 0;
  std::optional<std::string> invoice;  // the invoice that billed it; none while pending
  friend bool operator==(const InvoiceItem&, const InvoiceItem&) = default;
};

struct CustomerRecord {
  Customer customer;
  Card card;  // the card on file, what renewals charge: every customer comes from a checkout
  friend bool operator==(const CustomerRecord&, const CustomerRecord&) = default;
};

// An invoice the portal pays with a card that asks the bank's confirmation first.
struct PaymentToConfirm {
  std::string invoice_id;
  Cents amount = 0;
  Card card;
  friend bool operator==(const PaymentToConfirm&, const PaymentToConfirm&) = default;
};

struct PortalSession {
  std::string id;
  std::string customer;
  std::string return_url;
  std::optional<PaymentToConfirm> payment_to_confirm;  // the confirm step's, if one is shown
  std::int64_t created = 0;  // none for a session saved before this was kept: expired
  friend bool operator==(const PortalSession&, const PortalSession&) = default;
};

// A portal link is short-lived, as Stripe's: anyone holding it can pay, change the card and
// cancel, so one left in a browser's history or a shared screen must not work for long.
inline std::int64_t expires_at(const PortalSession& portal) {
  return portal.created + 60 * 60;
}

// What the portal page shows, copied out of the provider.
struct PortalView {
  std::string id;
  std::string return_url;
  Card card;
  std::vector<Subscription> subscriptions;  // newest first
  std::vector<Invoice> invoices;            // newest first
  Cents balance = 0;  // the customer's, for their next invoice (negative: a credit)
};

inline const std::string& id_of(const CheckoutSession& s) {
  return s.id;
}
inline const std::string& id_of(const Subscription& s) {
  return s.id;
}
inline const std::string& id_of(const InvoiceRecord& i) {
  return i.invoice.id;
}
inline const std::string& id_of(const InvoiceItem& i) {
  return i.id;
}
inline const std::string& id_of(const CustomerRecord& c) {
  return c.customer.id;
}
inline const std::string& id_of(const PortalSession& p) {
  return p.id;
}

// Rows in the order they were added (Stripe lists newest first: read it backwards), found by id.
// References to rows stay valid as rows are added.
template <class Row>
class Table {
 public:
  Row& add(Row row) {
    rows_.push_back(std::move(row));
    index_.emplace(id_of(rows_.back()), rows_.size() - 1);
    return rows_.back();
  }
  // The row `id`, or throws missing(id).
  Row& at(std::string_view id, ApiError (*missing)(std::string_view)) {
    if (Row* row = find(id)) return *row;
    throw missing(id);
  }
  const Row& at(std::string_view id, ApiError (*missing)(std::string_view)) const {
    if (const Row* row = find(id)) return *row;
    throw missing(id);
  }
  Row* find(std::string_view id) {
    const auto it = index_.find(id);
    return it == index_.end() ? nullptr : &rows_[it->second];
  }
  const Row* find(std::string_view id) const {
    const auto it = index_.find(id);
    return it == index_.end() ? nullptr : &rows_[it->second];
  }
  std::deque<Row>& rows() { return rows_; }
  const std::deque<Row>& rows() const { return rows_; }
  // Drops the rows `drop` picks (references to any row are invalid after).
  template <class Pick>
  void erase_if(Pick drop) {
    std::erase_if(rows_, drop);
    index_.clear();
    for (std::size_t i = 0; i < rows_.size(); ++i) index_.emplace(id_of(rows_[i]), i);
  }

 private:
  std::deque<Row> rows_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace billing::local
