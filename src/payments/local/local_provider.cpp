#include "payments/local/local_provider.hpp"

#include <stdexcept>

namespace billing {

namespace asio = boost::asio;

LocalProvider::LocalProvider(const Catalog& catalog, PriceMap prices, const Clock& clock,
                             std::string webhook_secret, std::string base_url, DeliverEvent deliver)
    : clock_(clock),
      signature_(webhook_secret),
      base_url_(std::move(base_url)),
      deliver_(std::move(deliver)),
      ledger_(catalog, std::move(prices)) {}

TimePoint LocalProvider::now_locked() const {
  return clock_.now() + offset_;
}

TimePoint LocalProvider::now() const {
  std::lock_guard lock(mutex_);
  return now_locked();
}

template <class Change>
auto LocalProvider::locked(Change change) {
  std::lock_guard lock(mutex_);
  return change(ledger_, now_locked());
}

asio::awaitable<void> LocalProvider::deliver(local::Events events) {
  for (auto& payload : events) {
    // The webhook checks `t` against the service's clock, which advance() does not move.
    auto header = signature_.sign(payload, clock_.now());
    co_await deliver_(std::move(header), std::move(payload));
  }
}

asio::awaitable<std::string> LocalProvider::create_checkout_session(CheckoutRequest request) {
  const auto id = locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.open_checkout(std::move(request), now).id;
  });
  co_return base_url_ + "/local-pay/checkout/" + id;
}

asio::awaitable<std::string> LocalProvider::create_portal_session(std::string customer_id,
                                                                  std::string return_url) {
  const auto id = locked([&](local::Ledger& ledger, TimePoint) {
    return ledger.open_portal(customer_id, std::move(return_url)).id;
  });
  co_return base_url_ + "/local-pay/portal/" + id;
}

asio::awaitable<Subscription> LocalProvider::get_subscription(std::string id) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.subscription(id); });
}

asio::awaitable<Subscription> LocalProvider::cancel_at_period_end(std::string id) {
  auto [subscription, events] = locked(
      [&](local::Ledger& ledger, TimePoint now) { return ledger.cancel_at_period_end(id, now); });
  co_await deliver(std::move(events));
  co_return subscription;
}

asio::awaitable<Subscription> LocalProvider::change_price(std::string id, std::string price_id,
                                                          PlanType plan_type, BillingCycle cycle) {
  auto [subscription, events] = locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.change_price(id, price_id, plan_type, cycle, now);
  });
  co_await deliver(std::move(events));
  co_return subscription;
}

asio::awaitable<Page<Invoice>> LocalProvider::list_invoices(std::string customer_id,
                                                            PageRequest page) {
  co_return locked(
      [&](local::Ledger& ledger, TimePoint) { return ledger.invoices(customer_id, page); });
}

asio::awaitable<Page<Customer>> LocalProvider::list_customers(PageRequest page) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.customers(page); });
}

asio::awaitable<Page<Subscription>> LocalProvider::list_subscriptions(PageRequest page) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.subscriptions(page); });
}

asio::awaitable<std::optional<ChargeDetails>> LocalProvider::charge_details(std::string) {
  co_return std::nullopt;  // its invoice events carry the charge expanded, fee and card included
}

asio::awaitable<void> LocalProvider::check_health() {
  co_return;  // nothing to reach: it runs inside the service
}

asio::awaitable<RenewalReport> LocalProvider::advance(std::chrono::seconds by) {
  if (by < std::chrono::seconds::zero())
    throw std::invalid_argument("the provider's clock only moves forward");
  auto [report, events] = locked([&](local::Ledger& ledger, TimePoint) {
    offset_ += by;
    return ledger.renew_due(now_locked());
  });
  co_await deliver(std::move(events));
  co_return report;
}

local::CheckoutSession LocalProvider::payable_session(std::string_view id) const {
  std::lock_guard lock(mutex_);
  return ledger_.payable_session(id);
}

asio::awaitable<local::CheckoutSession> LocalProvider::pay_checkout(std::string session_id,
                                                                    local::Card card) {
  auto [session, events] = locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.pay_checkout(session_id, card, now);
  });
  co_await deliver(std::move(events));
  co_return session;
}

asio::awaitable<local::CheckoutSession> LocalProvider::confirm_checkout(std::string session_id) {
  auto [session, events] = locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.confirm_checkout(session_id, now);
  });
  co_await deliver(std::move(events));
  co_return session;
}

local::PortalView LocalProvider::portal(std::string_view id) const {
  std::lock_guard lock(mutex_);
  return ledger_.portal(id);
}

asio::awaitable<void> LocalProvider::pay_invoice(std::string portal_id, std::string invoice_id,
                                                 local::Card card) {
  co_await deliver(locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.pay_invoice(portal_id, invoice_id, card, now);
  }));
}

void LocalProvider::update_card(std::string_view portal_id, const local::Card& card) {
  locked([&](local::Ledger& ledger, TimePoint) { ledger.update_card(portal_id, card); });
}

asio::awaitable<Subscription> LocalProvider::cancel_from_portal(std::string portal_id,
                                                                std::string subscription_id) {
  auto [subscription, events] = locked([&](local::Ledger& ledger, TimePoint now) {
    return ledger.cancel_from_portal(portal_id, subscription_id, now);
  });
  co_await deliver(std::move(events));
  co_return subscription;
}

}  // namespace billing
