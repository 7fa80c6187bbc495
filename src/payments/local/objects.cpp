#include "payments/local/objects.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "kit/crypto.hpp"

namespace billing::local {
namespace {

namespace json = boost::json;

json::object card_details(const Card& card) {
  return {{"type", "card"},
          {"card",
           {{"brand", "visa"},
            {"last4", card.last4},
            {"exp_month", card.exp_month},
            {"exp_year", card.exp_year}}}};
}

json::object charge_object(const Charge& charge) {
  json::object out{{"id", charge.id},
                   {"object", "charge"},
                   {"amount", charge.amount},
                   {"status", charge.paid ? "succeeded" : "failed"},
                   {"payment_method_details", card_details(charge.card)}};
  if (charge.paid) {
    const Cents fee = card_fee(charge.amount);
    out["balance_transaction"] = {{"fee", fee}, {"net", charge.amount - fee}};
  }
  return out;
}

json::value optional_text(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

// Stripe's checkout session statuses: open (also while a card awaits authentication), complete,
// expired.
std::string_view session_status(SessionState state) {
  switch (state) {
    case SessionState::complete:
      return "complete";
    case SessionState::expired:
      return "expired";
    default:
      return "open";
  }
}

}  // namespace

Cents card_fee(Cents amount) {
  return (amount * 29 + 500) / 1000 + 30;
}

Metadata checkout_metadata(const CheckoutRequest& request) {
  return {{"role", std::string(name_of(request.entity.kind))},
          {"role_entity_id", request.entity.id},
          {"plan", std::string(name_of(request.plan_type))},
          {"cycle", std::string(name_of(request.cycle))}};
}

json::object metadata_object(const Metadata& metadata) {
  json::object out;
  for (const auto& [key, value] : metadata) out[key] = value;
  return out;
}

json::object items_object(const Subscription& subscription) {
  return {{"object", "list"},
          {"data", json::array{json::object{{"id", subscription.item_id},
                                            {"price", {{"id", subscription.price_id}}}}}}};
}

json::object subscription_object(const Subscription& subscription) {
  return {{"id", subscription.id},
          {"object", "subscription"},
          {"customer", subscription.customer},
          {"status", subscription.status},
          {"cancel_at_period_end", subscription.cancel_at_period_end},
          {"current_period_start", subscription.current_period_start},
          {"current_period_end", subscription.current_period_end},
          {"billing_cycle_anchor", subscription.billing_cycle_anchor},
          {"items", items_object(subscription)},
          {"metadata", metadata_object(subscription.metadata)}};
}

json::object invoice_object(const InvoiceRecord& record, const Invoice& invoice,
                            std::optional<Cents> period_amount,
                            const std::vector<InvoiceItem>& items) {
  const json::object period{{"start", record.period_start}, {"end", record.period_end}};
  json::array lines;
  if (period_amount)
    lines.push_back(json::object{{"type", "subscription"},
                                 {"proration", false},
                                 {"amount", *period_amount},
                                 {"price", {{"id", record.price_id}}},
                                 {"period", period}});
  for (const InvoiceItem& item : items) {
    if (item.price_id.empty()) continue;  // the customer's balance (starting_balance): no line
    lines.push_back(
        json::object{{"type", "invoiceitem"},
                     {"amount", item.amount},
                     {"proration", true},
                     {"price", {{"id", item.price_id}}},
                     {"period", {{"start", item.period_start}, {"end", item.period_end}}}});
  }
  return {{"id", invoice.id},
          {"object", "invoice"},
          {"customer", invoice.customer},
          {"subscription", optional_text(invoice.subscription)},
          {"status", invoice.status},
          {"total", invoice.total.value_or(0)},
          {"starting_balance", invoice.starting_balance.value_or(0)},
          {"amount_due", invoice.amount_due},
          {"amount_paid", invoice.amount_paid},
          {"ending_balance", invoice.ending_balance.value_or(0)},
          {"currency", invoice.currency},
          {"created", invoice.created},
          {"billing_reason", record.billing_reason},
          {"payment_intent",
           record.charge.id.empty() ? json::value(nullptr) : json::value(record.payment_intent)},
          // A zero invoice (credits covered it) is paid without a charge.
          {"charge", record.charge.id.empty() ? json::value(nullptr)
                                              : json::value(charge_object(record.charge))},
          {"period_start", record.period_start},
          {"period_end", record.period_end},
          {"subscription_details", {{"metadata", metadata_object(record.metadata)}}},
          {"lines", {{"object", "list"}, {"data", std::move(lines)}}},
          {"attempt_count", record.attempt_count},
          {"next_payment_attempt", record.next_payment_attempt
                                       ? json::value(*record.next_payment_attempt)
                                       : json::value(nullptr)},
          {"status_transitions",
           {{"paid_at", record.paid_at ? json::value(*record.paid_at) : json::value(nullptr)}}}};
}

json::object checkout_session_object(const CheckoutSession& session,
                                     std::optional<std::string_view> invoice) {
  const CheckoutRequest& request = session.request;
  return {{"id", session.id},
          {"object", "checkout.session"},
          {"mode", "subscription"},
          {"status", session_status(session.state)},
          {"payment_status", session.state == SessionState::complete ? "paid" : "unpaid"},
          {"customer", optional_text(request.customer_id)},
          {"subscription", session.subscription_id.empty() ? json::value(nullptr)
                                                           : json::value(session.subscription_id)},
          {"invoice", invoice ? json::value(*invoice) : json::value(nullptr)},
          {"client_reference_id", request.entity.id},
          {"amount_total", session.amount},
          {"currency", "usd"},
          {"created", session.created},
          {"expires_at", expires_at(session)},
          {"metadata", metadata_object(checkout_metadata(request))}};
}

Event make_event(std::string_view type, json::object object, std::int64_t created,
                 json::object previous_attributes) {
  json::object data{{"object", std::move(object)}};
  if (!previous_attributes.empty()) data["previous_attributes"] = std::move(previous_attributes);
  Event event{.id = "evt_" + random_hex(12)};
  event.payload = json::serialize(json::object{{"id", event.id},
                                               {"object", "event"},
                                               {"api_version", kApiVersion},
                                               {"created", created},
                                               {"livemode", false},
                                               {"type", type},
                                               {"data", std::move(data)}});
  return event;
}

}  // namespace billing::local
