#pragma once
// A payment provider for tests of the work done apart from requests (fees, subscription
// checks): invoice_charge and get_subscription answer from scripts, one entry a call (the last
// repeats); every other call is a test's mistake.
#include <atomic>
#include <deque>
#include <functional>
#include <stdexcept>

#include "payments/provider.hpp"

namespace billing::testing {

class ScriptedProvider final : public PaymentProvider {
 public:
  using ChargeAnswer = std::function<std::optional<ChargeDetails>()>;
  using SubscriptionAnswer = std::function<Subscription()>;
  explicit ScriptedProvider(std::deque<ChargeAnswer> charges,
                            std::deque<SubscriptionAnswer> subscriptions = {})
      : charges_(std::move(charges)), subscriptions_(std::move(subscriptions)) {}
  explicit ScriptedProvider(std::deque<SubscriptionAnswer> subscriptions)
      : subscriptions_(std::move(subscriptions)) {}
  std::atomic<int> calls = 0;

  boost::asio::awaitable<std::optional<ChargeDetails>> invoice_charge(std::string) override {
    co_return next(charges_)();
  }
  boost::asio::awaitable<Subscription> get_subscription(std::string) override {
    co_return next(subscriptions_)();
  }
  boost::asio::awaitable<std::string> create_checkout_session(CheckoutRequest) override {
    unused();
  }
  boost::asio::awaitable<std::string> create_portal_session(std::string, std::string) override {
    unused();
  }
  boost::asio::awaitable<Subscription> cancel_at_period_end(std::string) override { unused(); }
  boost::asio::awaitable<Subscription> change_price(std::string, std::string, PlanType,
                                                    BillingCycle) override {
    unused();
  }
  boost::asio::awaitable<Page<Invoice>> list_invoices(std::string, PageRequest) override {
    unused();
  }
  boost::asio::awaitable<Page<Customer>> list_customers(PageRequest) override { unused(); }
  boost::asio::awaitable<Page<Subscription>> list_subscriptions(PageRequest) override { unused(); }
  boost::asio::awaitable<void> check_health() override { unused(); }

 private:
  [[noreturn]] static void unused() { throw std::logic_error("not part of this test"); }
  template <class Answer>
  Answer next(std::deque<Answer>& script) {
    ++calls;
    if (script.empty()) unused();
    const Answer answer = script.front();
    if (script.size() > 1) script.pop_front();
    return answer;
  }

  std::deque<ChargeAnswer> charges_;
  std::deque<SubscriptionAnswer> subscriptions_;
};

}  // namespace billing::testing
