#pragma once
// The local provider's bookkeeping: checkout sessions, customers, subscriptions, invoices and
// portal sessions in memory (LocalProvider saves them: objects(), restore()), and what the
// checkout, the portal, the API calls and the passing of time do to them. Each change returns the
// events it causes, in the order Stripe sends them, for the caller to deliver. Not thread-safe:
// LocalProvider holds its mutex around every call and delivers the events after letting go of it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "kit/api_error.hpp"
#include "kit/clock.hpp"
#include "payments/local/records.hpp"
#include "payments/local/repo.hpp"
#include "payments/price_map.hpp"
#include "plans/catalog.hpp"

namespace billing::local {

using Events = std::vector<Event>;  // in delivery order

// The billing reason of an invoice a subscription change made (Stripe's): a price change's
// prorations, a change of interval's new period, and a subscription's last invoice of the
// prorations a ledger stored before price changes were invoiced at once still owed.
inline constexpr std::string_view kProrationsOnly = "subscription_update";

// What an invoice bills, with the subscription's pending items.
enum class InvoicePurpose {
  checkout,         // the first period
  renewal,          // the next period
  interval_change,  // a period at the new interval, from now
  price_change,     // prorations alone: the rest of the period at a new price
};

// The kinds of stored object (LocalObject::kind) the ledger keeps.

namespace kind {
inline constexpr std::string_view checkout_session = "checkout_session";
inline constexpr std::string_view customer = "customer";
inline constexpr std::string_view subscription = "subscription";
inline constexpr std::string_view invoice = "invoice";
inline constexpr std::string_view invoice_item = "invoice_item";
inline constexpr std::string_view portal_session = "portal_session";
}  // namespace kind

template <class T>
struct WithEvents {
  T value;
  Events events;
  // A payment refused (a declined card, say) by a change that is kept all the same: thrown once
  // the change is saved.
  std::optional<ApiError> refusal;
};

struct RenewalReport {
  TimePoint now;  // the provider's clock
  int renewed = 0;
  int failed = 0;
  int cancelled = 0;
  int expired_checkouts = 0;
  int retried = 0;    // unpaid invoices charged again
  int recovered = 0;  // of which paid
};

class Ledger {
 public:
  Ledger(const Catalog& catalog, PriceMap prices);
  // A ledger of the same catalog and prices, with no objects.
  Ledger emptied() const { return Ledger(*catalog_, prices_); }

  // Throws provider_errors::rejected() when the price is not the request's plan.
  const CheckoutSession& open_checkout(CheckoutRequest request, TimePoint now);
  // The session while it can be paid at `now`: 404 for an unknown id, 409 once complete, 410 once
  // expired.
  const CheckoutSession& payable_session(std::string_view id, TimePoint now) const;
  // What paying the session now would charge: its price, the customer's balance taken in.
  Cents due_at_checkout(const CheckoutSession& session) const;
  // Charges `card` for the session: the completed session and its events, or the session
  // awaiting authentication (no events). A failed charge throws its 402 and leaves it open.
  WithEvents<CheckoutSession> pay_checkout(std::string_view id, const Card& card, TimePoint now);
  // Completes the payment the session awaits authentication for (409 if it awaits none).
  WithEvents<CheckoutSession> confirm_checkout(std::string_view id, TimePoint now);

  const PortalSession& open_portal(std::string_view customer_id, std::string return_url,
                                   TimePoint now);
  // 404 for an unknown id; 410 once it has expired, as for every use of a portal below.
  PortalView portal(std::string_view id, TimePoint now) const;
  // Pays an open invoice of the portal's customer; a past_due subscription is active again. A
  // card that asks for authentication pays nothing yet: the payment the portal then awaits the
  // confirmation of is the value.
  WithEvents<std::optional<PaymentToConfirm>> pay_invoice(std::string_view portal_id,
                                                          std::string_view invoice_id,
                                                          const Card& card, TimePoint now);
  // Completes the payment the portal awaits authentication for, of `invoice_id` (409 if it awaits
  // none, or one of another invoice: a later payment replaced it; 409 if the invoice was paid or
  // voided meanwhile).
  Events confirm_invoice_payment(std::string_view portal_id, std::string_view invoice_id,
                                 TimePoint now);
  void update_card(std::string_view portal_id, const Card& card, TimePoint now);
  WithEvents<Subscription> cancel_from_portal(std::string_view portal_id,
                                              std::string_view subscription_id, TimePoint now);

  const Subscription& subscription(std::string_view id) const;
  WithEvents<Subscription> cancel_at_period_end(std::string_view id, TimePoint now);
  WithEvents<Subscription> change_price(std::string_view id, std::string_view price_id,
                                        PlanType plan_type, BillingCycle cycle, TimePoint now);
  Page<Invoice> invoices(std::string_view customer_id, const PageRequest& page) const;
  Page<Customer> customers(const PageRequest& page) const;
  Page<Subscription> subscriptions(const PageRequest& page) const;

  // Expires the checkouts left unpaid for a day (checkout.session.expired), and ends, renews or
  // fails each subscription whose period is over at `now`, as often as due.
  WithEvents<RenewalReport> renew_due(TimePoint now);

  // Every object as stored (kind, id, JSON; version left 0), each kind in the order added
  // (payments/local/ledger_storage.cpp).
  std::vector<LocalObject> objects() const;
  // The objects that are new or differ from `before`'s, as objects() gives them, and the kind and
  // id of each of `before`'s this ledger no longer has: what a change of a copy leaves to save.
  void changes_from(const Ledger& before, std::vector<LocalObject>& changed,
                    std::vector<std::pair<std::string, std::string>>& removed) const;
  // Adds an object objects() gave, at start-up. Throws std::runtime_error for a kind the ledger
  // does not keep, boost::system::system_error for data it cannot read.
  void restore(const LocalObject& object);
  // Throws std::runtime_error naming a subscription not canceled whose price is of no plan the
  // catalog offers (a plan taken out of it): it could not be renewed, nor any renewal be made
  // once one fails.
  void require_offered_prices() const;

 private:
  PricedPlan plan_of(std::string_view price_id) const;
  const PlanOffer& offer_for(const PricedPlan& plan) const;
  std::optional<Cents> price_amount(std::string_view price_id) const;  // none: not in the map
  Cents amount_of(std::string_view price_id) const;  // or provider_errors::rejected

  WithEvents<CheckoutSession> complete_checkout(CheckoutSession& session, const Card& card,
                                                std::int64_t now);
  CustomerRecord& checkout_customer(const CheckoutRequest& request, const Card& card,
                                    std::int64_t now);
  // The known customer a checkout of `request` pays as, if any (else it makes one).
  std::optional<std::string> paying_customer(const CheckoutRequest& request) const;
  // Whether `item` is a balance an invoice of `customer` left (a credit, or less than a charge),
  // which the customer's next invoice takes, whichever subscription it is for (Stripe keeps it on
  // the customer).
  bool customers_balance(const InvoiceItem& item, std::string_view customer) const;
  // Whether the subscription's next invoice takes `item`: its own, and the customer's balance.
  bool invoiced_next(const InvoiceItem& item, const Subscription& subscription) const;
  // `price_id`'s amount for the rest of the subscription's period at `now`.
  Cents rest_of_period(const Subscription& subscription, std::string_view price_id,
                       std::int64_t now) const;
  // The subscription's invoice for its current period, with its pending invoice items.
  InvoiceRecord& invoice_for(const Subscription& subscription, InvoicePurpose purpose,
                             std::int64_t now);
  // Prorations of a price change at `now`, for the invoice made then: the rest of the period at
  // the new price and a credit for it at the old one, or the credit alone (a change of interval,
  // which bills a new period instead).
  enum class Proration { both, credit };
  void prorate(const Subscription& subscription, std::string_view new_price_id, std::int64_t now,
               Proration lines);
  // What an invoice billed: the period at the price (none: prorations owed alone), its items
  // (lines, and the balance it took), and the invoice with its total and balances.
  struct Billed {
    Invoice invoice;
    std::optional<Cents> period_amount;
    std::vector<InvoiceItem> items;
  };
  Billed billed(const InvoiceRecord& record) const;
  // The invoice as Stripe's JSON, with the items it billed as lines.
  boost::json::object invoice_json(const InvoiceRecord& record) const;
  boost::json::object next_period(Subscription& subscription) const;
  void skip_period(Subscription& subscription, std::int64_t now, WithEvents<RenewalReport>& out);
  void renew(Subscription& subscription, std::int64_t now, WithEvents<RenewalReport>& out);
  void end(Subscription& subscription, std::int64_t now, WithEvents<RenewalReport>& out);
  // The subscription's open invoice the card on file is to be tried again for, if any.
  InvoiceRecord* invoice_to_retry(const Subscription& subscription);
  void retry(Subscription& subscription, InvoiceRecord& invoice, std::int64_t now,
             WithEvents<RenewalReport>& out);
  void reactivate(Subscription& subscription, std::int64_t now, Events& events);
  // The portal customer's open invoice (404 for another's, 409 if paid or voided).
  InvoiceRecord& open_invoice(const PortalSession& portal, std::string_view invoice_id);
  // Records the portal payment of `invoice` with `card`, which becomes the card on file.
  Events settle_invoice(const PortalSession& portal, InvoiceRecord& invoice, const Card& card,
                        TimePoint now);
  bool charge(const Subscription& subscription, InvoiceRecord& invoice, std::int64_t now,
              WithEvents<RenewalReport>& out);

  const Catalog* catalog_;  // not a reference: a ledger is copied back to undo a change
  PriceMap prices_;
  Table<CheckoutSession> sessions_;
  Table<CustomerRecord> customers_;
  Table<Subscription> subscriptions_;
  Table<InvoiceRecord> invoices_;
  Table<InvoiceItem> invoice_items_;
  Table<PortalSession> portals_;
};

}  // namespace billing::local
