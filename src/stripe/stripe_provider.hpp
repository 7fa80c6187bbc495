#pragma once
// The payment provider over Stripe's REST API (libcurl). Each call runs on the provider's own
// small thread pool, never on the caller's I/O thread, and resumes the caller's coroutine when
// done. POSTs carry an Idempotency-Key that stays the same across the retries of one call.
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/json/value.hpp>

#include "kit/api_error.hpp"
#include "payments/provider.hpp"
#include "stripe/form.hpp"
#include "stripe/metrics.hpp"

namespace billing {

struct StripeOptions {
  std::string api_base = "https://api.stripe.com";  // no trailing slash
  std::string secret_key;                           // sk_live_... / sk_test_...
  std::string api_version = "2023-10-16";           // sent as Stripe-Version
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{20000};  // per attempt
  // Further attempts after a network failure, a timeout, 409, 429 or 5xx; attempt n+1 waits
  // backoff_base * 2^(n-1) first.
  int retries = 2;
  std::chrono::milliseconds backoff_base{200};
  std::size_t pool_threads = 4;  // blocking calls in flight at once
};

class StripeProvider final : public PaymentProvider {
 public:
  // The provider must outlive the calls made on it (the composition root keeps it for the
  // server's life): a call resumes on the caller's executor and goes on using the provider.
  // `metrics` counts every call; it outlives the provider.
  StripeProvider(StripeOptions options, StripeMetrics& metrics);
  StripeProvider(const StripeProvider&) = delete;
  StripeProvider& operator=(const StripeProvider&) = delete;

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
  boost::asio::awaitable<std::optional<ChargeDetails>> invoice_charge(
      std::string invoice_id) override;
  boost::asio::awaitable<void> check_health() override;

 private:
  // An object the request names, for Stripe's resource_missing answer: `param` is the form
  // parameter that holds it, or empty for the object in the request's path.
  struct Named {
    std::string param;
    std::string id;
    ApiError (*missing)(std::string_view id);
  };
  struct Request {
    StripeEndpoint endpoint = StripeEndpoint::retrieve_account;
    bool post = false;
    std::string path;              // path segments already escaped
    std::string_view api_version;  // Stripe-Version; empty: StripeOptions::api_version
    stripe::FormParams params;     // the body of a POST, the query of a GET
    std::vector<Named> named;
    std::string idempotency_key;  // for a POST; empty: a fresh random one for this call
  };

  struct Failure {
    StripeCallOutcome outcome;
    ApiError error;
  };

  // Sends the request and reads Stripe's answer with `read`, counted in the metrics; what `read`
  // returns, or throws one of payments/provider_errors.hpp.
  template <class Read>
  auto call(Request request, Read read)
      -> boost::asio::awaitable<decltype(read(std::declval<const boost::json::value&>()))>;
  // Sends with retries; Stripe's answer, or throws with `outcome` set to how the call failed.
  boost::asio::awaitable<boost::json::value> send(const Request& request,
                                                  StripeCallOutcome& outcome);
  // The customer made for `entity` by an earlier call in Stripe's idempotency window, else a new
  // one: its id.
  boost::asio::awaitable<std::string> create_customer(const EntityRef& entity);
  Failure failure(const Request& request, long status, const boost::json::value& body) const;
  std::string redacted(std::string text) const;  // the secret key, should Stripe echo it

  StripeOptions options_;
  StripeMetrics& metrics_;
  boost::asio::thread_pool pool_;
};

}  // namespace billing
