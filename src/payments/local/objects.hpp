#pragma once
// The local provider's objects and events as Stripe's JSON (API version 2023-10-16), the shapes
// the webhook handler (payments/events.cpp) reads.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/money.hpp"
#include "payments/local/records.hpp"

namespace billing::local {

inline constexpr std::string_view kApiVersion = "2023-10-16";

// Stripe's standard US card pricing, 2.9% + 30 cents, the percentage rounded half up.
Cents card_fee(Cents amount);

// role, role_entity_id, plan, cycle: on the session and on the subscription it creates.
Metadata checkout_metadata(const CheckoutRequest& request);
boost::json::object metadata_object(const Metadata& metadata);
boost::json::object items_object(const Subscription& subscription);
boost::json::object subscription_object(const Subscription& subscription);
// With the charge expanded (Stripe sends its id) so that the fee, net and card are recorded; its
// lines: the period at the subscription's price (`period_amount`; none: an invoice of items
// alone), then the invoice items it billed (prorations).
// `invoice`: the record's, with its total and balances.
boost::json::object invoice_object(const InvoiceRecord& record, const Invoice& invoice,
                                   std::optional<Cents> period_amount,
                                   const std::vector<InvoiceItem>& items);
// `invoice`: the first invoice, once the checkout is complete.
boost::json::object checkout_session_object(const CheckoutSession& session,
                                            std::optional<std::string_view> invoice = std::nullopt);

// A new event: `object` as data.object, and data.previous_attributes unless empty.
Event make_event(std::string_view type, boost::json::object object, std::int64_t created,
                 boost::json::object previous_attributes = {});

}  // namespace billing::local
