#include "stripe/objects.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "kit/json.hpp"

namespace billing::stripe {

namespace json = boost::json;

namespace {

const json::object& as_object(const json::value& value, std::string_view what) {
  const auto* object = value.if_object();
  if (!object) throw std::runtime_error(std::string("Stripe sent no ").append(what) + " object");
  return *object;
}

std::optional<std::string> optional_string(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (!value || !value->is_string()) return std::nullopt;
  return std::string(value->get_string());
}

std::string string_or_empty(const json::object& object, std::string_view key) {
  return optional_string(object, key).value_or("");
}

// A reference to another object: its id, or the object itself when expanded.
std::optional<std::string> optional_id(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value && value->is_object()) return optional_string(value->get_object(), "id");
  return optional_string(object, key);
}

std::int64_t integer_or_zero(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (!value) return 0;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->get_uint64());
  return 0;
}

std::optional<std::int64_t> optional_integer(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value && value->is_int64()) return value->get_int64();
  return std::nullopt;
}

// What Stripe always sends: an answer without it is not Stripe's (a proxy's page, a truncated
// body), and is not shown as a zero.
std::int64_t required_integer(const json::object& object, std::string_view key,
                              std::string_view what) {
  const auto* value = object.if_contains(key);
  if (value && value->is_int64()) return value->get_int64();
  throw std::runtime_error(std::string(what) + " without its " + std::string(key));
}

std::string required_string(const json::object& object, std::string_view key,
                            std::string_view what) {
  auto text = optional_string(object, key);
  if (!text || text->empty())
    throw std::runtime_error(std::string(what) + " without its " + std::string(key));
  return std::move(*text);
}

bool bool_or_false(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_bool() && value->get_bool();
}

Metadata metadata_of(const json::object& object) {
  Metadata metadata;
  const auto* value = object.if_contains("metadata");
  if (!value || !value->is_object()) return metadata;
  for (const auto& [key, text] : value->get_object())
    if (text.is_string()) metadata.emplace_back(key, text.get_string());
  return metadata;
}

}  // namespace

Subscription read_subscription(const json::value& value) {
  const auto& object = as_object(value, "subscription");
  Subscription subscription;
  subscription.id = required_string(object, "id", "subscription");
  subscription.status = required_string(object, "status", "subscription");
  subscription.customer = optional_id(object, "customer").value_or("");
  if (subscription.customer.empty()) throw std::runtime_error("subscription without its customer");
  subscription.billing_cycle_anchor = integer_or_zero(object, "billing_cycle_anchor");
  subscription.cancel_at_period_end = bool_or_false(object, "cancel_at_period_end");
  const auto* pause = object.if_contains("pause_collection");
  subscription.collection_paused = pause && !pause->is_null();
  subscription.metadata = metadata_of(object);
  // Our subscriptions have one item: the first is the one.
  const json::object* item = nullptr;
  if (const auto* items = object.if_contains("items"); items && items->is_object()) {
    const auto* data = items->get_object().if_contains("data");
    if (data && data->is_array() && !data->get_array().empty()) {
      item = &as_object(data->get_array().front(), "subscription item");
      subscription.item_id = required_string(*item, "id", "subscription item");
      subscription.price_id = optional_id(*item, "price").value_or("");
      if (subscription.price_id.empty())
        throw std::runtime_error("subscription item without its price");
    }
  }
  // From API version 2025-03-31 on, the period is the item's, no longer the subscription's.
  const json::object& period = object.contains("current_period_end") || !item ? object : *item;
  subscription.current_period_start =
      required_integer(period, "current_period_start", "subscription");
  subscription.current_period_end = required_integer(period, "current_period_end", "subscription");
  return subscription;
}

Invoice read_invoice(const json::value& value) {
  const auto& object = as_object(value, "invoice");
  Invoice invoice;
  invoice.id = required_string(object, "id", "invoice");
  invoice.customer = optional_id(object, "customer").value_or("");
  invoice.subscription = optional_id(object, "subscription");
  invoice.amount_due = required_integer(object, "amount_due", "invoice");
  invoice.amount_paid = required_integer(object, "amount_paid", "invoice");
  invoice.total = optional_integer(object, "total");
  invoice.starting_balance = optional_integer(object, "starting_balance");
  invoice.ending_balance = optional_integer(object, "ending_balance");
  invoice.currency = required_string(object, "currency", "invoice");
  invoice.status = string_or_empty(object, "status");  // none while a draft is made
  invoice.created = required_integer(object, "created", "invoice");
  return invoice;
}

Customer read_customer(const json::value& value) {
  const auto& object = as_object(value, "customer");
  Customer customer;
  customer.id = required_string(object, "id", "customer");
  customer.email = optional_string(object, "email");
  customer.name = optional_string(object, "name");
  customer.created = required_integer(object, "created", "customer");
  customer.metadata = metadata_of(object);
  return customer;
}

template <class T>
Page<T> read_page(const json::value& value, T (*read)(const json::value&)) {
  const auto& object = as_object(value, "list");
  const auto* data = object.if_contains("data");
  if (!data || !data->is_array()) throw std::runtime_error("Stripe sent a list without data");
  Page<T> page;
  page.data.reserve(data->get_array().size());
  for (const auto& element : data->get_array()) page.data.push_back(read(element));
  page.has_more = bool_or_false(object, "has_more");
  return page;
}

template Page<Subscription> read_page(const json::value&, Subscription (*)(const json::value&));
template Page<Invoice> read_page(const json::value&, Invoice (*)(const json::value&));
template Page<Customer> read_page(const json::value&, Customer (*)(const json::value&));

namespace {

ChargeDetails read_charge(const json::object& charge) {
  const auto* balance = charge.if_contains("balance_transaction");
  if (!balance || !balance->is_object())
    throw std::runtime_error("Stripe sent a charge without its balance transaction");
  const auto& txn = balance->get_object();
  ChargeDetails details{.charge_id = optional_string(charge, "id"),
                        .fee = required_integer(txn, "fee", "balance transaction"),
                        .net = required_integer(txn, "net", "balance transaction")};
  if (!details.charge_id) throw std::runtime_error("Stripe sent a charge without its id");
  // The balance is kept in the account's settlement currency: a charge in another currency has
  // its fee there too. The payment is in the charge's currency, so the fee is brought back at the
  // rate the balance used (its amount against the charge's), and net is what remains of the
  // charge: amount = fee + net holds to the cent in the payment's own currency.
  if (string_or_empty(txn, "currency") != string_or_empty(charge, "currency")) {
    const auto charged = required_integer(charge, "amount", "charge");
    const auto settled = required_integer(txn, "amount", "balance transaction");
    if (charged > 0 && settled > 0) {
      details.fee = std::llround(static_cast<long double>(details.fee) * charged / settled);
      details.net = charged - details.fee;
    }
  }
  // The specification's fields of the card, not everything Stripe knows about it.
  const auto* method = charge.if_contains("payment_method_details");
  const auto* card =
      method && method->is_object() ? method->get_object().if_contains("card") : nullptr;
  if (card && card->is_object()) {
    const auto& c = card->get_object();
    json::object shown{{"brand", string_or_empty(c, "brand")},
                       {"last4", string_or_empty(c, "last4")},
                       {"exp_month", integer_or_zero(c, "exp_month")},
                       {"exp_year", integer_or_zero(c, "exp_year")}};
    details.payment_method = to_json(json::object{{"type", "card"}, {"card", std::move(shown)}});
  }
  return details;
}

}  // namespace

std::optional<ChargeDetails> read_invoice_charge(const json::value& value) {
  const auto& invoice = as_object(value, "invoice");
  const auto* charge = invoice.if_contains("charge");
  if (!charge) throw std::runtime_error("Stripe sent an invoice without its charge member");
  if (charge->is_null()) {
    // Marked paid outside Stripe: Stripe took nothing, so no fee. Any other invoice with no
    // charge (its cash balance, say) is not guessed at.
    if (!bool_or_false(invoice, "paid_out_of_band")) return std::nullopt;
    const auto* paid = invoice.if_contains("amount_paid");
    if (!paid || !paid->is_int64())
      throw std::runtime_error("Stripe sent an invoice without its amount_paid");
    return ChargeDetails{.fee = 0, .net = paid->get_int64()};
  }
  auto details = read_charge(as_object(*charge, "expanded charge"));
  details.payment_intent_id = optional_id(invoice, "payment_intent");
  return details;
}

std::string read_session_url(const json::value& value) {
  auto url = optional_string(as_object(value, "session"), "url");
  if (!url || url->empty()) throw std::runtime_error("Stripe sent a session without a url");
  return std::move(*url);
}

}  // namespace billing::stripe
