#pragma once
// Stripe's JSON objects read into the provider's structs. Absent or null optional fields read
// as empty; a response that is not the object asked for (not an object, or without a field
// Stripe always sends: an id, a status, an amount, a currency) throws std::runtime_error.
#include <boost/json/value.hpp>

#include "payments/provider.hpp"

namespace billing::stripe {

Subscription read_subscription(const boost::json::value& json);
Invoice read_invoice(const boost::json::value& json);
Customer read_customer(const boost::json::value& json);

// A list object ({"data": [...], "has_more": ...}), each element read by `read`.
template <class T>
Page<T> read_page(const boost::json::value& json, T (*read)(const boost::json::value&));

// An invoice retrieved with `charge.balance_transaction` expanded: the charge that paid it, with
// the fee and net from its balance transaction (in the charge's currency, also when the balance
// settles in another) and the card as {"type":"card","card":{brand,last4,exp_month,exp_year}},
// and its payment intent. No charge: a fee of 0 if it was marked paid outside Stripe, else
// nullopt. Throws if the charge or its balance transaction is not there (another API version,
// not expanded, or the charge not settled).
std::optional<ChargeDetails> read_invoice_charge(const boost::json::value& json);

// The `url` of a Checkout or portal session.
std::string read_session_url(const boost::json::value& json);

}  // namespace billing::stripe
