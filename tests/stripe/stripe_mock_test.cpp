// Every call of StripeProvider against stripe-mock, Stripe's own emulator, which checks each
// request against Stripe's OpenAPI description (paths, methods, parameter names and encodings)
// and answers with Stripe's sample objects: what we send Stripe accepts, what it sends we read.
#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "kit/run_blocking.hpp"
#include "stripe/stripe_provider.hpp"
#include "tests/stripe/stripe_mock.hpp"

namespace billing {
namespace {

using stripe_test::StripeMock;

class StripeMockProvider : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto binary = stripe_test::stripe_mock_binary();
    if (!binary) return;
    try {
      mock_ = new StripeMock(*binary);
    } catch (const std::exception& error) {
      start_error_ = error.what();
    }
  }
  static void TearDownTestSuite() {
    delete mock_;
    mock_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(start_error_, "") << "stripe-mock did not start";
    if (!mock_) {
      if (stripe_test::stripe_mock_required())
        FAIL() << "BILLING_REQUIRE_STRIPE_MOCK=1 but " << stripe_test::kNoStripeMock;
      GTEST_SKIP() << stripe_test::kNoStripeMock;
    }
    StripeOptions options;
    options.api_base = mock_->base_url();
    options.secret_key = "sk_test_123";
    options.backoff_base = std::chrono::milliseconds(10);
    provider = std::make_unique<StripeProvider>(options, metrics);
  }

  static CheckoutRequest checkout() {
    CheckoutRequest request;
    request.entity = {EntityKind::hospital, "hosp-1"};
    request.plan_type = PlanType::pro;
    request.cycle = BillingCycle::yearly;
    request.price_id = "price_hosp_pro_yearly";
    request.success_url = "https://app.example/billing/success?session={CHECKOUT_SESSION_ID}";
    request.cancel_url = "https://app.example/billing/cancel";
    return request;
  }

  static StripeMock* mock_;
  static std::string start_error_;
  StripeMetrics metrics;
  std::unique_ptr<StripeProvider> provider;
};

StripeMock* StripeMockProvider::mock_ = nullptr;
std::string StripeMockProvider::start_error_;

void expect_subscription(const Subscription& subscription) {
  EXPECT_FALSE(subscription.id.empty());
  EXPECT_FALSE(subscription.status.empty());
  EXPECT_FALSE(subscription.customer.empty());
  EXPECT_FALSE(subscription.item_id.empty());
  EXPECT_FALSE(subscription.price_id.empty());
  EXPECT_GT(subscription.current_period_end, 0);
  EXPECT_GT(subscription.billing_cycle_anchor, 0);
}

TEST_F(StripeMockProvider, CreatesACheckoutSession) {
  const auto url = run_blocking(provider->create_checkout_session(checkout()));
  EXPECT_TRUE(url.starts_with("https://")) << url;
}

TEST_F(StripeMockProvider, CreatesACheckoutSessionForAnExistingCustomer) {
  auto request = checkout();
  request.customer_id = "cus_existing";
  const auto url = run_blocking(provider->create_checkout_session(request));
  EXPECT_TRUE(url.starts_with("https://")) << url;
}

TEST_F(StripeMockProvider, CreatesAPortalSession) {
  const auto url =
      run_blocking(provider->create_portal_session("cus_existing", "https://app.example/billing"));
  EXPECT_TRUE(url.starts_with("https://")) << url;
}

TEST_F(StripeMockProvider, GetsASubscription) {
  const auto subscription = run_blocking(provider->get_subscription("sub_123"));
  EXPECT_EQ(subscription.id, "sub_123");  // stripe-mock echoes the id asked for
  expect_subscription(subscription);
}

TEST_F(StripeMockProvider, CancelsAtPeriodEnd) {
  const auto subscription = run_blocking(provider->cancel_at_period_end("sub_123"));
  expect_subscription(subscription);
  EXPECT_TRUE(subscription.cancel_at_period_end);
}

TEST_F(StripeMockProvider, ChangesThePrice) {
  const auto subscription = run_blocking(provider->change_price(
      "sub_123", "price_hosp_pro_yearly", PlanType::pro, BillingCycle::yearly));
  expect_subscription(subscription);
}

TEST_F(StripeMockProvider, ListsInvoicesOfACustomer) {
  const auto first = run_blocking(provider->list_invoices("cus_existing", {.limit = 3}));
  ASSERT_FALSE(first.data.empty());
  for (const auto& invoice : first.data) {
    EXPECT_FALSE(invoice.id.empty());
    EXPECT_FALSE(invoice.currency.empty());
    EXPECT_FALSE(invoice.status.empty());
  }
  const auto next = run_blocking(provider->list_invoices(
      "cus_existing", {.limit = 3, .starting_after = first.data.back().id}));
  EXPECT_FALSE(next.data.empty());
}

TEST_F(StripeMockProvider, ListsCustomers) {
  const auto first = run_blocking(provider->list_customers({.limit = 100}));
  ASSERT_FALSE(first.data.empty());
  EXPECT_FALSE(first.data.front().id.empty());
  EXPECT_GT(first.data.front().created, 0);
  const auto next =
      run_blocking(provider->list_customers({.limit = 1, .starting_after = first.data.front().id}));
  EXPECT_FALSE(next.data.empty());
}

TEST_F(StripeMockProvider, ListsSubscriptionsOfEveryStatus) {
  const auto first = run_blocking(provider->list_subscriptions({.limit = 5}));
  ASSERT_FALSE(first.data.empty());
  expect_subscription(first.data.front());
  const auto next = run_blocking(
      provider->list_subscriptions({.limit = 5, .starting_after = first.data.front().id}));
  EXPECT_FALSE(next.data.empty());
}

TEST_F(StripeMockProvider, RetrievesTheChargeThatPaidAnInvoiceWithItsBalanceTransaction) {
  const auto details = run_blocking(provider->invoice_charge("in_123"));
  ASSERT_TRUE(details.has_value());
  EXPECT_TRUE(details->charge_id.has_value());
  EXPECT_GE(details->fee, 0);
  EXPECT_TRUE(details->payment_method.has_value());
}

TEST_F(StripeMockProvider, ChecksHealth) {
  EXPECT_NO_THROW(run_blocking(provider->check_health()));
  EXPECT_EQ(metrics.calls.value(StripeEndpoint::retrieve_account, StripeCallOutcome::ok), 1u);
}

// stripe-mock refuses a key that is not one, as Stripe does; we show our fixed text.
TEST_F(StripeMockProvider, AKeyStripeRefusesIsAuthenticationFailed) {
  StripeOptions options;
  options.api_base = mock_->base_url();
  options.secret_key = "not-a-key";
  StripeProvider refused(options, metrics);
  try {
    run_blocking(refused.check_health());
    FAIL() << "stripe-mock accepted the key";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status, 503);
    EXPECT_EQ(error.detail.as_string(), "Stripe authentication failed");
  }
  EXPECT_EQ(metrics.calls.value(StripeEndpoint::retrieve_account,
                                StripeCallOutcome::authentication_failed),
            1u);
}

}  // namespace
}  // namespace billing
