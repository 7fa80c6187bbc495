#pragma once
// Calls to Stripe's API, for GET /metrics: one count per call (its retries included) by endpoint
// and how it ended, the retries on their own, and how long calls took. Endpoints are named as
// Stripe's libraries name them.
#include <array>
#include <cstddef>
#include <string_view>

#include "kit/enums.hpp"
#include "kit/metrics.hpp"

namespace billing {

enum class StripeEndpoint {
  create_checkout_session,
  create_portal_session,
  retrieve_subscription,
  update_subscription,
  list_invoices,
  list_customers,
  list_subscriptions,
  retrieve_invoice,
  retrieve_account,
  create_customer,
};
template <>
struct EnumNames<StripeEndpoint> {
  static constexpr std::array<std::string_view, 10> names{"checkout.sessions.create",
                                                          "billing_portal.sessions.create",
                                                          "subscriptions.retrieve",
                                                          "subscriptions.update",
                                                          "invoices.list",
                                                          "customers.list",
                                                          "subscriptions.list",
                                                          "invoices.retrieve",
                                                          "account.retrieve",
                                                          "customers.create"};
};
// A name for every endpoint (a label value past the table would count in another's cell).
static_assert(EnumNames<StripeEndpoint>::names.size() ==
              static_cast<std::size_t>(StripeEndpoint::create_customer) + 1);

// How a call ended, after its retries.
enum class StripeCallOutcome {
  ok,
  card_error,             // 402: declined, insufficient funds, authentication required
  not_found,              // resource_missing
  rejected,               // any other 4xx: a request Stripe will not take
  authentication_failed,  // 401: our key
  unavailable,            // network, timeouts, 409/429/5xx on every attempt, unreadable answers
};
template <>
struct EnumNames<StripeCallOutcome> {
  static constexpr std::array<std::string_view, 6> names{
      "ok", "card_error", "not_found", "rejected", "authentication_failed", "unavailable"};
};
static_assert(EnumNames<StripeCallOutcome>::names.size() ==
              static_cast<std::size_t>(StripeCallOutcome::unavailable) + 1);

struct StripeMetrics {
  CounterFamily<StripeEndpoint, StripeCallOutcome> calls{
      "billing_stripe_api_calls_total",
      "Calls to Stripe's API by endpoint and outcome.",
      {"endpoint", "outcome"}};
  CounterFamily<StripeEndpoint> retries{
      "billing_stripe_api_retries_total", "Attempts beyond the first, by endpoint.", {"endpoint"}};
  HistogramFamily<StripeEndpoint> latency{
      "billing_stripe_api_call_duration_seconds",
      "Time from a call's first attempt to its answer, retries included.",
      {"endpoint"}};

  void write(MetricsText& out) const {
    calls.write(out);
    retries.write(out);
    latency.write(out);
  }
};

}  // namespace billing
