#pragma once
// The payment provider as the payments domain sees it: Stripe's REST API (src/stripe/) or
// the service's own stand-in (payments/local/). Calls never block the caller's thread. Failures
// are ApiErrors with fixed, reviewed texts (see payments/provider_errors.hpp): a provider's own
// message, a key or a stack trace never reaches a client.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/entity.hpp"
#include "core/money.hpp"
#include "core/plan_kinds.hpp"
#include "kit/enums.hpp"
#include "payments/types.hpp"

namespace billing {

using Metadata = std::vector<std::pair<std::string, std::string>>;  // in the provider's order

struct CheckoutRequest {
  EntityRef entity;
  PlanType plan_type = PlanType::lite;
  BillingCycle cycle = BillingCycle::monthly;
  std::string price_id;                    // from the price map
  std::optional<std::string> customer_id;  // the entity's existing customer, if any
  std::string success_url;
  std::string cancel_url;
  // Sent as metadata role, role_entity_id, plan, cycle (on the session and on the
  // subscription it creates) and as client_reference_id = entity.id.
  friend bool operator==(const CheckoutRequest&, const CheckoutRequest&) = default;
};

struct Subscription {
  std::string id;
  std::string status;  // Stripe's: active, past_due, canceled, paused, ...
  std::string customer;
  std::string item_id;   // the one subscription item (its price is what is charged)
  std::string price_id;  // that item's price
  std::int64_t current_period_start = 0;  // Unix seconds
  std::int64_t current_period_end = 0;
  // Periods end whole calendar months (or years) after it, as Stripe's do (Unix seconds; 0 when
  // not known).
  std::int64_t billing_cycle_anchor = 0;
  bool cancel_at_period_end = false;
  bool collection_paused = false;  // Stripe's pause_collection is set (the local provider's never)
  Metadata metadata;
  friend bool operator==(const Subscription&, const Subscription&) = default;
};

struct Invoice {
  std::string id;
  std::string customer;
  std::optional<std::string> subscription;
  Cents amount_due = 0;
  Cents amount_paid = 0;
  // What its lines add up to, and the customer's balance before and after it (negative: a
  // credit): total + starting_balance = amount_due + ending_balance. None where unknown (Stripe
  // sends no ending balance before the invoice is finalized).
  std::optional<Cents> total;
  std::optional<Cents> starting_balance;
  std::optional<Cents> ending_balance;
  std::string currency;
  std::string status;  // draft, open, paid, uncollectible, void
  std::int64_t created = 0;
  friend bool operator==(const Invoice&, const Invoice&) = default;
};

struct Customer {
  std::string id;
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::int64_t created = 0;
  Metadata metadata;
  friend bool operator==(const Customer&, const Customer&) = default;
};

// Stripe's cursor pagination: up to `limit` (1-100) objects after the one named.
struct PageRequest {
  int limit = 10;
  std::optional<std::string> starting_after;
};
template <class T>
struct Page {
  std::vector<T> data;
  bool has_more = false;
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;

  // A hosted checkout page (mode=subscription) for the request's price; its URL.
  virtual boost::asio::awaitable<std::string> create_checkout_session(CheckoutRequest request) = 0;
  // A customer portal session for `customer_id`; its URL.
  virtual boost::asio::awaitable<std::string> create_portal_session(std::string customer_id,
                                                                    std::string return_url) = 0;
  virtual boost::asio::awaitable<Subscription> get_subscription(std::string id) = 0;
  // Ends the subscription at its period's end (nothing more if it already will);
  // provider_errors::subscription_canceled if it has ended already.
  virtual boost::asio::awaitable<Subscription> cancel_at_period_end(std::string id) = 0;
  // Moves the subscription's one item to `price_id`, prorated, and records the new plan and
  // cycle in its metadata; the plan follows when customer.subscription.updated arrives.
  virtual boost::asio::awaitable<Subscription> change_price(std::string id, std::string price_id,
                                                            PlanType plan_type,
                                                            BillingCycle cycle) = 0;
  virtual boost::asio::awaitable<Page<Invoice>> list_invoices(std::string customer_id,
                                                              PageRequest page) = 0;
  virtual boost::asio::awaitable<Page<Customer>> list_customers(PageRequest page) = 0;
  virtual boost::asio::awaitable<Page<Subscription>> list_subscriptions(PageRequest page) = 0;
  // The charge that paid an invoice, with its fee, net and card, for a payment whose event named
  // the charge at most; nullopt from a provider whose events carry all that already.
  virtual boost::asio::awaitable<std::optional<ChargeDetails>> invoice_charge(
      std::string invoice_id) = 0;
  // Throws the 503s when the provider cannot be reached or refuses our key.
  virtual boost::asio::awaitable<void> check_health() = 0;
};

}  // namespace billing
