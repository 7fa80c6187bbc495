#pragma once
// The only texts a provider failure shows a client. Each provider maps its failures to these;
// what the provider said goes to the log (without keys), never into a response.
#include <string>
#include <string_view>

#include "kit/api_error.hpp"

namespace billing::provider_errors {

inline ApiError card_declined() {
  return ApiError(402, "Your card was declined");
}
inline ApiError insufficient_funds() {
  return ApiError(402, "Your card has insufficient funds");
}
inline ApiError authentication_required() {
  return ApiError(402, "Your card requires authentication");
}
inline ApiError unavailable() {
  return ApiError(503, "Stripe service unavailable");
}
inline ApiError authentication_failed() {
  return ApiError(503, "Stripe authentication failed");
}
// Stripe refused a request we built (a bad price id, say): our fault or our configuration's.
inline ApiError rejected() {
  return ApiError(502, "Stripe rejected the request");
}
inline ApiError no_such_subscription(std::string_view id) {
  return ApiError(404, std::string("No such subscription: ").append(id));
}
inline ApiError no_such_customer(std::string_view id) {
  return ApiError(404, std::string("No such customer: ").append(id));
}
inline ApiError no_such_invoice(std::string_view id) {
  return ApiError(404, std::string("No such invoice: ").append(id));
}
// The local provider changes no price while an invoice is unpaid (its plan is suspended then).
inline ApiError subscription_unpaid() {
  return ApiError(409,
                  "The subscription has an unpaid invoice: settle it in the billing portal "
                  "(POST /stripe/portal-link) first");
}
// Stripe changes nothing on a canceled subscription (it answers a generic invalid request).
inline ApiError subscription_canceled() {
  return ApiError(409, "Subscription is already canceled");
}

}  // namespace billing::provider_errors
