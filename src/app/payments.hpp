#pragma once
// The payment side of the composition root: the price map, the webhook receiver, the provider
// (Stripe's API, or the local stand-in whose pages and events run inside the service) and the
// link from plan choices to subscription changes.
#include <memory>
#include <string>
#include <thread>

#include "app/config.hpp"
#include "core/db.hpp"
#include "http/route.hpp"
#include "payments/charge_completion.hpp"
#include "payments/price_map.hpp"
#include "payments/provider.hpp"
#include "payments/routes.hpp"
#include "payments/subscription_checks.hpp"
#include "payments/webhook.hpp"
#include "plans/catalog.hpp"
#include "stripe/metrics.hpp"

namespace billing {

class LocalProvider;

class Payments {
 public:
  // `base_url` is where this service is reached (the local provider's pages live there).
  Payments(const Config& config, Db& db, const Catalog& catalog, const Clock& clock,
           std::string base_url);
  ~Payments();

  void add_routes(Router& router, Db& db);
  // Cancels the waits between a fee's or a subscription check's retries, and the sweeps (SIGTERM,
  // or the end of a one-off command): a missing fee is left to `billing complete-fees`, a check
  // to the next start's sweep, an event of the local provider to its next change or start.
  void stop();
  // While serving: a thread of its own settles the subscription checks that retries, restarts
  // and outages left, now and every few minutes, and delivers again the local provider's events
  // the webhook refused, until stop().
  void start_sweeping();
  // Before serving: the local provider loads its saved objects and delivers the events it had
  // not delivered (nothing to do for Stripe's).
  boost::asio::awaitable<void> resume();

  struct ReplayReport {
    std::size_t applied = 0;  // ok, or found applied meanwhile (duplicate, stale, ignored)
    std::size_t failed = 0;   // failed again, recorded as such
  };
  // Applies again, oldest first, up to `limit` webhook events whose processing failed (kept in
  // the inbox), as Stripe's redelivery would (`billing replay-events`).
  boost::asio::awaitable<ReplayReport> replay_failed_events(std::size_t limit);
  // Asks the provider, once each, for the fee of up to `limit` payments still without one
  // (`billing complete-fees`: those whose retries ran out, or were cut short by a restart).
  boost::asio::awaitable<ChargeCompletion::Report> complete_missing_fees(std::size_t limit) {
    return charge_completion_.complete_missing(limit);
  }
  SubscriptionChanges& subscription_changes() { return subscription_changes_; }
  // Webhook events, and calls to Stripe's API (all zero with the local provider).
  void write_metrics(MetricsText& out) const {
    webhooks_.write_metrics(out);
    stripe_metrics_.write(out);
  }

 private:
  boost::asio::awaitable<void> deliver(std::string signature, std::string payload);

  Db& db_;
  std::string webhook_secret_;
  PriceMap prices_;
  WebhookReceiver webhooks_;
  StripeMetrics stripe_metrics_;
  LocalProvider* local_ = nullptr;  // the provider, when it is the local one (its pages)
  std::unique_ptr<PaymentProvider> provider_;
  ChargeCompletion charge_completion_;      // of paid invoices whose events name only the charge
  SubscriptionChecks subscription_checks_;  // of subscriptions whose events tied
  ProviderSubscriptionChanges subscription_changes_;
  CheckoutUrls urls_;
  std::jthread sweeper_;  // last: joined before the rest goes
};

}  // namespace billing
