#pragma once
// The local payment provider: a stand-in for Stripe inside the service, so that the whole paid
// flow (checkout, renewals, failed payments, the portal) works without a Stripe account. It is
// the default without a Stripe key and what `billing serve --dev` uses. Its checkout and portal
// are HTML pages served by the service (payments/local/routes.cpp); its events are signed like
// Stripe's and go through the service's own webhook path. Everything lives in memory: a restart
// forgets it.
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/route.hpp"
#include "kit/clock.hpp"
#include "payments/local/ledger.hpp"
#include "payments/price_map.hpp"
#include "payments/provider.hpp"
#include "payments/webhook_signature.hpp"
#include "plans/catalog.hpp"

namespace billing {

using RenewalReport = local::RenewalReport;

class LocalProvider final : public PaymentProvider {
 public:
  // Delivers one signed event through the service's webhook path (the code behind POST
  // /stripe/webhook). Throws if the service did not accept it (the webhook answered non-2xx).
  using DeliverEvent = std::function<boost::asio::awaitable<void>(std::string stripe_signature,
                                                                  std::string payload)>;

  // `base_url` is where the service is reached (e.g. "http://127.0.0.1:8000"): the checkout and
  // portal URLs point there.
  LocalProvider(const Catalog& catalog, PriceMap prices, const Clock& clock,
                std::string webhook_secret, std::string base_url, DeliverEvent deliver);

  boost::asio::awaitable<std::string> create_checkout_session(CheckoutRequest request) override;
  boost::asio::awaitable<std::string> create_portal_session(std::string customer_id,
                                                            std::string return_url) override;
  boost::asio::awaitable<Subscription> get_subscription(std::string id) override;
  boost::asio::awaitable<Subscription> cancel_at_period_end(std::string id) override;
  boost::asio::awaitable<Subscription> change_price(std::string id, std::string price_id,
                                                    PlanType plan_type,
                                                    BillingCycle cycle) override;
  boost::asio::awaitable<Page<Invoice>> list_invoices(std::string customer_id,
                                                      PageRequest page) override;
  boost::asio::awaitable<Page<Customer>> list_customers(PageRequest page) override;
  boost::asio::awaitable<Page<Subscription>> list_subscriptions(PageRequest page) override;
  boost::asio::awaitable<std::optional<ChargeDetails>> charge_details(
      std::string charge_id) override;
  boost::asio::awaitable<void> check_health() override;

  // The provider's clock: the service's, plus everything advance() added. Objects and events are
  // dated by it; signatures by the service's clock, which the webhook checks them against.
  TimePoint now() const;
  // Moves the provider's clock forward by `by` (not negative), then ends, renews or fails each
  // subscription whose period is over, delivering the events of each.
  boost::asio::awaitable<RenewalReport> advance(std::chrono::seconds by);

  // What the pages do (payments/local/routes.cpp); failures are ApiErrors for the page to show.
  local::CheckoutSession payable_session(std::string_view id) const;
  boost::asio::awaitable<local::CheckoutSession> pay_checkout(std::string session_id,
                                                              local::Card card);
  boost::asio::awaitable<local::CheckoutSession> confirm_checkout(std::string session_id);
  local::PortalView portal(std::string_view id) const;
  boost::asio::awaitable<void> pay_invoice(std::string portal_id, std::string invoice_id,
                                           local::Card card);
  void update_card(std::string_view portal_id, const local::Card& card);
  boost::asio::awaitable<Subscription> cancel_from_portal(std::string portal_id,
                                                          std::string subscription_id);

 private:
  TimePoint now_locked() const;
  // Signs each event at the service's now and delivers them one after the other, in order.
  boost::asio::awaitable<void> deliver(local::Events events);
  // Runs change(ledger, provider now) under the mutex; being no coroutine, it cannot hold the
  // mutex across a co_await.
  template <class Change>
  auto locked(Change change);

  const Clock& clock_;
  WebhookSignature signature_;
  std::string base_url_;
  DeliverEvent deliver_;
  mutable std::mutex mutex_;  // never held across a co_await
  std::chrono::seconds offset_{0};
  local::Ledger ledger_;
};

// The checkout and portal pages (Policy::open(): their unguessable ids are the capability) and
// the admin's POST /stripe/local/clock/advance.
void add_local_payment_routes(Router& router, LocalProvider& provider);

}  // namespace billing
