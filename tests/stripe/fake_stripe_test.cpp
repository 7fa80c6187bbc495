// StripeProvider against a fake Stripe in the test process (fake_stripe.hpp) that records every
// request and answers what each test needs: headers, the exact form encoding, retries with one
// Idempotency-Key, timeouts, and Stripe's errors turned into fixed texts with Stripe's words and
// our key kept out of responses and logs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>

#include "kit/run_blocking.hpp"
#include "stripe/stripe_provider.hpp"
#include "tests/stripe/fake_stripe.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using stripe_test::FakeStripe;
using stripe_test::invoice_paid_by;
using stripe_test::Reply;
using stripe_test::stripe_error;
using stripe_test::subscription_object;
using testing::HasSubstr;

constexpr std::string_view kSecretKey = "sk_test_51TopSecretKeyValue";
constexpr std::string_view kStripeWords = "Stripe-internal-explanation-text";

// Every spdlog line written while it lives, instead of stderr.
class CapturedLog {
 public:
  CapturedLog()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink_));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const {
    sink_->flush();
    return text_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

class StripeProviderFake : public ::testing::Test {
 protected:
  void SetUp() override { use(options()); }

  StripeOptions options() const {
    StripeOptions options;
    options.api_base = fake.base_url();
    options.secret_key = kSecretKey;
    options.backoff_base = 5ms;
    options.connect_timeout = 1s;
    options.total_timeout = 5s;
    return options;
  }
  void use(const StripeOptions& options) {
    provider = std::make_unique<StripeProvider>(options, metrics);
  }

  // The ApiError the call ends with (a failed expectation if it succeeds).
  template <class T>
  static ApiError error_of(asio::awaitable<T> call) {
    try {
      run_blocking(std::move(call));
    } catch (const ApiError& error) {
      return error;
    }
    ADD_FAILURE() << "the call succeeded";
    return ApiError(0, "");
  }

  static CheckoutRequest checkout() {
    CheckoutRequest request;
    request.entity = {EntityKind::individual, "ind 7/a"};
    request.plan_type = PlanType::lite;
    request.cycle = BillingCycle::monthly;
    request.price_id = "price_ind_lite_monthly";
    request.customer_id = "cus_9";
    request.success_url = "https://app.test/ok?session={CHECKOUT_SESSION_ID}&x=a b+c";
    request.cancel_url = "https://app.test/cancel";
    return request;
  }

  FakeStripe fake;
  CapturedLog log;
  StripeMetrics metrics;
  std::unique_ptr<StripeProvider> provider;
};

void expect_error(const ApiError& error, int status, std::string_view detail) {
  EXPECT_EQ(error.status, status);
  ASSERT_TRUE(error.detail.is_string());
  EXPECT_EQ(error.detail.as_string(), detail);
}

TEST_F(StripeProviderFake, SendsTheKeyTheVersionAndAnIdempotencyKeyOnPosts) {
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_a"));
  run_blocking(provider->get_subscription("sub_1"));
  run_blocking(provider->cancel_at_period_end("sub_1"));
  run_blocking(provider->cancel_at_period_end("sub_1"));

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& request : requests) {
    EXPECT_EQ(request.header("authorization"), "Bearer " + std::string(kSecretKey));
    EXPECT_EQ(request.header("stripe-version"), "2023-10-16");
  }
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].header("idempotency-key"), "");
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(requests[1].body, "cancel_at_period_end=true");
  const auto key = requests[1].header("idempotency-key");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos) << key;
  // Another call is another operation: another key.
  EXPECT_NE(requests[2].header("idempotency-key"), key);
}

TEST_F(StripeProviderFake, SendsTheCheckoutFormInBracketNotationPercentEncoded) {
  const auto url = run_blocking(provider->create_checkout_session(checkout()));
  EXPECT_EQ(url, "https://checkout.stripe.test/c/cs_fake");

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/checkout/sessions");
  const std::string start =
      "mode=subscription"
      "&payment_method_types%5B0%5D=card"
      "&line_items%5B0%5D%5Bprice%5D=price_ind_lite_monthly"
      "&line_items%5B0%5D%5Bquantity%5D=1"
      "&success_url=https%3A%2F%2Fapp.test%2Fok%3Fsession%3D%7BCHECKOUT_SESSION_ID%7D%26x%3Da%20b%"
      "2Bc"
      "&cancel_url=https%3A%2F%2Fapp.test%2Fcancel"
      "&client_reference_id=ind%207%2Fa";
  const std::string metadata =
      "&metadata%5Brole%5D=individual"
      "&metadata%5Brole_entity_id%5D=ind%207%2Fa"
      "&metadata%5Bplan%5D=lite"
      "&metadata%5Bcycle%5D=monthly"
      "&subscription_data%5Bmetadata%5D%5Brole%5D=individual"
      "&subscription_data%5Bmetadata%5D%5Brole_entity_id%5D=ind%207%2Fa"
      "&subscription_data%5Bmetadata%5D%5Bplan%5D=lite"
      "&subscription_data%5Bmetadata%5D%5Bcycle%5D=monthly";
  EXPECT_EQ(requests[0].body, start + "&customer=cus_9" + metadata);
}

// Two checkouts of one entity open at once (two tabs) pay as one customer, so that the second
// subscription is in the payer's portal; Stripe's idempotency key makes it one.
TEST_F(StripeProviderFake, ACheckoutWithoutACustomerMakesTheEntitysOneCustomerFirst) {
  auto first = checkout();
  first.customer_id.reset();
  auto other = first;
  other.entity = {EntityKind::hospital, "ind 7/a"};
  for (const auto* request : {&first, &first, &other})
    run_blocking(provider->create_checkout_session(*request));

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 6u);
  for (std::size_t i : {0u, 2u, 4u}) {
    EXPECT_EQ(requests[i].method, "POST");
    EXPECT_EQ(requests[i].target, "/v1/customers");
    EXPECT_EQ(requests[i + 1].target, "/v1/checkout/sessions");
  }
  EXPECT_EQ(requests[0].body,
            "metadata%5Brole%5D=individual&metadata%5Brole_entity_id%5D=ind%207%2Fa");
  EXPECT_EQ(requests[4].body,
            "metadata%5Brole%5D=hospital&metadata%5Brole_entity_id%5D=ind%207%2Fa");
  const auto key = requests[0].header("idempotency-key");
  EXPECT_EQ(key.size(), 9u + 64u) << key;
  EXPECT_TRUE(key.starts_with("customer-")) << key;
  EXPECT_EQ(requests[2].header("idempotency-key"), key);
  EXPECT_NE(requests[4].header("idempotency-key"), key);  // another entity: another customer
  const auto customer_of = [&](std::size_t i) {
    const auto& body = requests[i].body;
    const auto at = body.find("&customer=");
    return at == std::string::npos ? std::string()
                                   : body.substr(at + 10, body.find('&', at + 1) - at - 10);
  };
  EXPECT_EQ(customer_of(1), "cus_fake0");
  EXPECT_EQ(customer_of(3), "cus_fake0");
  EXPECT_EQ(customer_of(5), "cus_fake1");
}

TEST_F(StripeProviderFake, ChangesThePriceOfTheSubscriptionsOneItem) {
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_old"));
  const auto changed = run_blocking(
      provider->change_price("sub_1", "price_new", PlanType::pro, BillingCycle::yearly));
  EXPECT_EQ(changed.item_id, "si_1");
  EXPECT_EQ(changed.price_id, "price_new");

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/v1/subscriptions/sub_1");
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].target, "/v1/subscriptions/sub_1");
  EXPECT_EQ(requests[1].body,
            "items%5B0%5D%5Bid%5D=si_1&items%5B0%5D%5Bprice%5D=price_new"
            "&proration_behavior=always_invoice&payment_behavior=error_if_incomplete"
            "&metadata%5Bplan%5D=pro"
            "&metadata%5Bcycle%5D=yearly");

  // The fake kept the change, as Stripe would.
  const auto fetched = run_blocking(provider->get_subscription("sub_1"));
  EXPECT_EQ(fetched.price_id, "price_new");
  EXPECT_EQ(fetched.current_period_start, 1700000000);
  EXPECT_EQ(fetched.current_period_end, 1702592000);
  EXPECT_EQ(fetched.customer, "cus_fake");
  EXPECT_EQ(fetched.metadata,
            (Metadata{{"role", "hospital"}, {"plan", "pro"}, {"cycle", "yearly"}}));
}

// An answer without what Stripe always sends (or about another object) is Stripe unusable, not
// zeros and empty strings shown to the caller or applied to a plan.
TEST_F(StripeProviderFake, AnAnswerWithoutWhatStripeAlwaysSendsIsUnavailable) {
  const auto body = [](const boost::json::object& object) {
    return boost::json::serialize(object);
  };
  auto without = [&](std::string_view key) {
    auto subscription = subscription_object("sub_1", "si_1", "price_a");
    subscription.erase(key);
    return body(subscription);
  };
  auto list_of = [](std::string element) {
    return R"({"object":"list","has_more":false,"data":[)" + element + "]}";
  };
  const std::vector<std::pair<std::string, std::function<asio::awaitable<void>()>>> cases{
      {body(subscription_object("sub_2", "si_1", "price_a")),
       [&]() -> asio::awaitable<void> { co_await provider->get_subscription("sub_1"); }},
      {body(subscription_object("sub_2", "si_1", "price_a")),
       [&]() -> asio::awaitable<void> { co_await provider->cancel_at_period_end("sub_1"); }},
      {without("status"),
       [&]() -> asio::awaitable<void> { co_await provider->get_subscription("sub_1"); }},
      {without("customer"),
       [&]() -> asio::awaitable<void> { co_await provider->get_subscription("sub_1"); }},
      {without("current_period_end"),
       [&]() -> asio::awaitable<void> { co_await provider->get_subscription("sub_1"); }},
      {body(subscription_object("sub_1", "si_1", "")),
       [&]() -> asio::awaitable<void> { co_await provider->get_subscription("sub_1"); }},
      {list_of(R"({"id":"in_1","customer":"cus_1","amount_paid":4990,"currency":"usd",)"
               R"("status":"paid","created":1700000001})"),
       [&]() -> asio::awaitable<void> { co_await provider->list_invoices("cus_1", {}); }},
      {list_of(R"({"id":"in_1","customer":"cus_1","amount_due":"4990","amount_paid":4990,)"
               R"("currency":"usd","status":"paid","created":1700000001})"),
       [&]() -> asio::awaitable<void> { co_await provider->list_invoices("cus_1", {}); }},
      {list_of(R"({"id":"in_1","customer":"cus_1","amount_due":4990,"amount_paid":4990,)"
               R"("status":"paid","created":1700000001})"),
       [&]() -> asio::awaitable<void> { co_await provider->list_invoices("cus_1", {}); }},
      {list_of(R"({"id":"cus_1","email":null})"),
       [&]() -> asio::awaitable<void> { co_await provider->list_customers({}); }},
      {invoice_paid_by("in_1",
                       R"({"id":"ch_1","amount":4990,"currency":"usd",)"
                       R"("balance_transaction":{"amount":4990,"currency":"usd","net":4815}})"),
       [&]() -> asio::awaitable<void> { co_await provider->invoice_charge("in_1"); }},
      // Settled in another currency, at a rate it does not give.
      {invoice_paid_by("in_1", R"({"id":"ch_1","amount":4990,"currency":"eur",)"
                               R"("balance_transaction":{"currency":"usd","fee":175,"net":5240}})"),
       [&]() -> asio::awaitable<void> { co_await provider->invoice_charge("in_1"); }},
  };
  for (const auto& [answer, call] : cases) {
    SCOPED_TRACE(answer);
    fake.queue({200, answer});
    expect_error(error_of(call()), 503, "Stripe service unavailable");
  }
}

// From API version 2025-03-31 on, a subscription's period is its item's.
TEST_F(StripeProviderFake, ReadsThePeriodFromTheItemWhereNewerVersionsKeepIt) {
  auto subscription = subscription_object("sub_1", "si_1", "price_a");
  subscription.erase("current_period_start");
  subscription.erase("current_period_end");
  auto& item = subscription["items"].as_object()["data"].as_array()[0].as_object();
  item["current_period_start"] = 1710000000;
  item["current_period_end"] = 1712592000;
  fake.add_subscription(subscription);
  const auto read = run_blocking(provider->get_subscription("sub_1"));
  EXPECT_EQ(read.current_period_start, 1710000000);
  EXPECT_EQ(read.current_period_end, 1712592000);
}

// Whether its collection is paused is read, for a subscription check to keep the plan suspended.
TEST_F(StripeProviderFake, ReadsWhetherASubscriptionsCollectionIsPaused) {
  auto paused = subscription_object("sub_1", "si_1", "price_a");
  paused["pause_collection"] = {{"behavior", "mark_uncollectible"}, {"resumes_at", nullptr}};
  fake.add_subscription(paused);
  fake.add_subscription(subscription_object("sub_2", "si_2", "price_a"));
  EXPECT_TRUE(run_blocking(provider->get_subscription("sub_1")).collection_paused);
  EXPECT_FALSE(run_blocking(provider->get_subscription("sub_2")).collection_paused);
}

TEST_F(StripeProviderFake, AnIdWithASlashOrAQuestionMarkStaysOnePathSegment) {
  const std::string id = "sub_1/../x?y=1#z";
  fake.add_subscription(subscription_object(id, "si_1", "price_a"));
  const auto subscription = run_blocking(provider->get_subscription(id));
  EXPECT_EQ(subscription.id, id);
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/v1/subscriptions/sub_1%2F%2E%2E%2Fx%3Fy%3D1%23z");
}

TEST_F(StripeProviderFake, ListsSendTheCursorAndReadThePage) {
  fake.queue({200, R"({"object":"list","has_more":true,"data":[
    {"id":"in_2","customer":"cus 1","subscription":"sub_1","amount_due":4990,"amount_paid":4990,
     "total":5090,"starting_balance":-100,"ending_balance":0,
     "currency":"eur","status":"paid","created":1700000001},
    {"id":"in_3","customer":{"id":"cus 1"},"subscription":null,"amount_due":100,"amount_paid":0,
     "currency":"eur","status":"open","created":1700000002}]})"});
  const auto invoices =
      run_blocking(provider->list_invoices("cus 1", {.limit = 2, .starting_after = "in_1"}));
  ASSERT_EQ(invoices.data.size(), 2u);
  EXPECT_TRUE(invoices.has_more);
  EXPECT_EQ(invoices.data[0].id, "in_2");
  EXPECT_EQ(invoices.data[0].customer, "cus 1");
  EXPECT_EQ(invoices.data[0].subscription, "sub_1");
  EXPECT_EQ(invoices.data[0].amount_paid, 4990);
  EXPECT_EQ(invoices.data[0].status, "paid");
  EXPECT_EQ(invoices.data[0].total, 5090);
  EXPECT_EQ(invoices.data[0].starting_balance, -100);
  EXPECT_EQ(invoices.data[0].ending_balance, 0);
  EXPECT_EQ(invoices.data[1].customer, "cus 1");             // expanded: its id
  EXPECT_EQ(invoices.data[1].ending_balance, std::nullopt);  // not finalized: Stripe sends null
  EXPECT_EQ(invoices.data[1].subscription, std::nullopt);

  fake.queue({200, R"({"object":"list","has_more":false,"data":[
    {"id":"cus_1","email":"a@b.test","name":null,"created":5,"metadata":{"z":"1","a":"2"}}]})"});
  const auto customers = run_blocking(provider->list_customers({.limit = 1}));
  ASSERT_EQ(customers.data.size(), 1u);
  EXPECT_FALSE(customers.has_more);
  EXPECT_EQ(customers.data[0].email, "a@b.test");
  EXPECT_EQ(customers.data[0].name, std::nullopt);
  EXPECT_EQ(customers.data[0].metadata, (Metadata{{"z", "1"}, {"a", "2"}}));

  fake.queue({200, R"({"object":"list","has_more":false,"data":[]})"});
  run_blocking(provider->list_subscriptions({.limit = 100, .starting_after = "sub_9"}));
  fake.queue({200, R"({"id":"acct_1","object":"account"})"});
  run_blocking(provider->check_health());

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].target, "/v1/invoices?customer=cus%201&limit=2&starting_after=in_1");
  EXPECT_EQ(requests[1].target, "/v1/customers?limit=1");
  EXPECT_EQ(requests[2].target, "/v1/subscriptions?status=all&limit=100&starting_after=sub_9");
  EXPECT_EQ(requests[3].target, "/v1/account");
  for (const auto& request : requests) EXPECT_EQ(request.method, "GET");
}

// Each pool thread keeps its curl handle, and with it its connection to Stripe.
TEST_F(StripeProviderFake, ReusesItsConnection) {
  auto options = this->options();
  options.pool_threads = 1;
  use(options);
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_a"));
  for (int i = 0; i < 3; ++i) run_blocking(provider->get_subscription("sub_1"));
  run_blocking(provider->cancel_at_period_end("sub_1"));
  EXPECT_EQ(fake.requests().size(), 4u);
  EXPECT_EQ(fake.connections(), 1);
}

TEST_F(StripeProviderFake, RetriesA500WithTheSameIdempotencyKey) {
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_a"));
  fake.queue({500, stripe_error("api_error", "", "try again")});
  const auto subscription = run_blocking(provider->cancel_at_period_end("sub_1"));
  EXPECT_TRUE(subscription.cancel_at_period_end);

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(requests[0].header("idempotency-key").empty());
  EXPECT_EQ(requests[1].header("idempotency-key"), requests[0].header("idempotency-key"));
  EXPECT_EQ(requests[1].body, requests[0].body);
}

TEST_F(StripeProviderFake, RetriesA429AndA409) {
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_a"));
  fake.queue({429, stripe_error("invalid_request_error", "rate_limit", "slow down")});
  fake.queue({409, stripe_error("idempotency_error", "", "in use")});
  run_blocking(provider->cancel_at_period_end("sub_1"));
  EXPECT_EQ(fake.requests().size(), 3u);
}

TEST_F(StripeProviderFake, ThreeFailuresAreUnavailableAfterExactlyThreeAttempts) {
  for (int i = 0; i < 4; ++i) fake.queue({503, "<html>upstream down</html>"});
  expect_error(error_of(provider->create_checkout_session(checkout())), 503,
               "Stripe service unavailable");
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].header("idempotency-key"), requests[0].header("idempotency-key"));
  EXPECT_EQ(requests[2].header("idempotency-key"), requests[0].header("idempotency-key"));
}

TEST_F(StripeProviderFake, AServerThatStallsIsUnavailableAfterTheTimeouts) {
  auto options = this->options();
  options.total_timeout = 150ms;
  use(options);
  for (int i = 0; i < 3; ++i) fake.queue({.stall = true});
  const auto start = std::chrono::steady_clock::now();
  expect_error(error_of(provider->get_subscription("sub_1")), 503, "Stripe service unavailable");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(fake.requests().size(), 3u);
}

// The health check answers healthy or 503, also when Stripe refuses the check itself.
TEST_F(StripeProviderFake, ARefusedHealthCheckIsUnavailable) {
  fake.queue(
      {.status = 400, .body = stripe_error("invalid_request_error", "", "No such thing: acct_1")});
  expect_error(error_of(provider->check_health()), 503, "Stripe service unavailable");
  fake.queue({.status = 403, .body = stripe_error("invalid_request_error", "", "Restricted key")});
  expect_error(error_of(provider->check_health()), 503, "Stripe service unavailable");
  fake.queue({.status = 401, .body = stripe_error("invalid_request_error", "", "Bad key")});
  expect_error(error_of(provider->check_health()), 503, "Stripe authentication failed");
}

// Stripe keeps a 5xx, once the work it answers for began, for the idempotency key it came with,
// and answers it again for a day (Idempotent-Replayed). A customer's key is made from the
// entity, so a kept failure would block the entity's checkouts for that day: the next try goes
// on under the key's next generation, as does every later checkout (still one customer).
TEST_F(StripeProviderFake, AFailureStripeKeptForAKeyMovesOnToItsNextGeneration) {
  auto request = checkout();
  request.customer_id.reset();
  fake.queue({.status = 500,
              .body = stripe_error("api_error", "", "Something went wrong"),
              .kept_for_key = true});
  run_blocking(provider->create_checkout_session(request));
  run_blocking(provider->create_checkout_session(request));
  const auto requests = fake.requests();
  // The 500, its replay, the next generation's customer, the session; then the replay again,
  // the next generation's (the same) customer, the session.
  ASSERT_EQ(requests.size(), 7u);
  const auto key = requests[0].header("idempotency-key");
  EXPECT_TRUE(key.starts_with("customer-")) << key;
  for (std::size_t i : {1u, 4u}) EXPECT_EQ(requests[i].header("idempotency-key"), key);
  for (std::size_t i : {2u, 5u}) EXPECT_EQ(requests[i].header("idempotency-key"), key + "-1");
  for (std::size_t i : {3u, 6u}) {
    EXPECT_EQ(requests[i].target, "/v1/checkout/sessions");
    EXPECT_THAT(requests[i].body, HasSubstr("&customer=cus_fake0"));
  }
}

// A replay is Stripe's stored answer, not a try: a call walks past every generation a failure was
// kept for without spending its attempts. Three kept failures use up one call's three attempts;
// the next call passes their replays and makes the customer under the fourth generation.
TEST_F(StripeProviderFake, KeptFailuresOfEarlierCallsCostALaterCallNoAttempt) {
  auto request = checkout();
  request.customer_id.reset();
  for (int i = 0; i < 3; ++i)
    fake.queue({.status = 500,
                .body = stripe_error("api_error", "", "Something went wrong"),
                .kept_for_key = true});
  expect_error(error_of(provider->create_checkout_session(request)), 503,
               "Stripe service unavailable");
  const auto failed = fake.requests().size();
  run_blocking(provider->create_checkout_session(request));
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), failed + 5);
  const auto key = requests[0].header("idempotency-key");
  EXPECT_EQ(requests[failed].header("idempotency-key"), key);
  for (int generation = 1; generation <= 3; ++generation)
    EXPECT_EQ(requests[failed + generation].header("idempotency-key"),
              key + "-" + std::to_string(generation));
  EXPECT_EQ(requests[failed + 4].target, "/v1/checkout/sessions");
}

// Attempt n+1 waits backoff_base * 2^(n-1): 100, 200, then 400 ms (waits that grew by the same
// step, or stayed alike, would take 600 ms or less).
TEST_F(StripeProviderFake, EachRetryWaitsTwiceAsLongAsTheOneBefore) {
  auto options = this->options();
  options.backoff_base = 100ms;
  options.retries = 3;
  use(options);
  for (int i = 0; i < 4; ++i) fake.queue({503, "<html>upstream down</html>"});
  const auto start = std::chrono::steady_clock::now();
  expect_error(error_of(provider->get_subscription("sub_1")), 503, "Stripe service unavailable");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(fake.requests().size(), 4u);
}

// A server whose connection queue is full drops the handshake: the connect timeout ends it.
TEST_F(StripeProviderFake, AConnectionThatIsNotAcceptedEndsAtTheConnectTimeout) {
  const auto open_socket = [] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) throw std::runtime_error("socket");
    return fd;
  };
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int listener = open_socket();
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 0), 0);  // never accepts; queues one connection
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(open_socket());
    ::connect(fillers.back(), reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  std::this_thread::sleep_for(50ms);  // the queue fills

  auto options = this->options();
  options.api_base = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  options.connect_timeout = 300ms;
  options.retries = 0;
  use(options);
  const auto start = std::chrono::steady_clock::now();
  expect_error(error_of(provider->get_subscription("sub_1")), 503, "Stripe service unavailable");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);  // not the total timeout (5 s)
  for (const int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST_F(StripeProviderFake, NobodyListeningIsUnavailable) {
  auto options = this->options();
  options.api_base = "http://127.0.0.1:1";  // a privileged port nothing of ours listens on
  use(options);
  expect_error(error_of(provider->check_health()), 503, "Stripe service unavailable");
}

// While Stripe is slow, the caller's thread goes on serving: the call waits on the pool.
TEST_F(StripeProviderFake, ACallDoesNotBlockTheCallersThread) {
  auto options = this->options();
  options.total_timeout = 400ms;
  options.retries = 0;
  use(options);
  fake.queue({.stall = true});
  asio::io_context ioc;  // one thread: the test's
  bool timer_fired_first = false;
  bool call_done = false;
  auto call = asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        try {
          co_await provider->get_subscription("sub_1");
        } catch (const ApiError&) {
        }
        call_done = true;
      },
      asio::use_future);
  auto timer = asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(ioc, 50ms);
        co_await pause.async_wait(asio::use_awaitable);
        timer_fired_first = !call_done;
      },
      asio::use_future);
  ioc.run();
  call.get();
  timer.get();
  EXPECT_TRUE(timer_fired_first);
  EXPECT_TRUE(call_done);
}

TEST_F(StripeProviderFake, CardErrorsAre402WithFixedTexts) {
  fake.queue({402, stripe_error("card_error", "card_declined", kStripeWords, "generic_decline")});
  expect_error(error_of(provider->create_checkout_session(checkout())), 402,
               "Your card was declined");
  fake.queue(
      {402, stripe_error("card_error", "card_declined", kStripeWords, "insufficient_funds")});
  expect_error(error_of(provider->create_checkout_session(checkout())), 402,
               "Your card has insufficient funds");
  fake.queue({402, stripe_error("card_error", "authentication_required", kStripeWords)});
  expect_error(error_of(provider->create_checkout_session(checkout())), 402,
               "Your card requires authentication");
  EXPECT_EQ(fake.requests().size(), 3u);  // none retried
}

TEST_F(StripeProviderFake, AMissingSubscriptionOrCustomerIs404) {
  expect_error(error_of(provider->get_subscription("sub_x")), 404, "No such subscription: sub_x");
  expect_error(
      error_of(provider->change_price("sub_x", "price_a", PlanType::pro, BillingCycle::monthly)),
      404, "No such subscription: sub_x");
  // A customer passed as a parameter: Stripe says 400 and names the parameter.
  fake.queue({400, stripe_error("invalid_request_error", "resource_missing", kStripeWords, "",
                                "customer")});
  expect_error(error_of(provider->create_portal_session("cus_x", "https://app.test/")), 404,
               "No such customer: cus_x");
  // A page that starts after an object Stripe does not know: the caller's mistake.
  const auto unknown_start = [&] {
    fake.queue({400, stripe_error("invalid_request_error", "resource_missing", kStripeWords, "",
                                  "starting_after")});
  };
  unknown_start();
  expect_error(error_of(provider->list_invoices("cus_1", {10, "in_x"})), 404,
               "No such invoice: in_x");
  unknown_start();
  expect_error(error_of(provider->list_customers({10, "cus_y"})), 404, "No such customer: cus_y");
  unknown_start();
  expect_error(error_of(provider->list_subscriptions({10, "sub_y"})), 404,
               "No such subscription: sub_y");
  // A missing price is our configuration's fault, not the caller's.
  fake.queue({400, stripe_error("invalid_request_error", "resource_missing", kStripeWords, "",
                                "line_items[0][price]")});
  expect_error(error_of(provider->create_checkout_session(checkout())), 502,
               "Stripe rejected the request");
}

TEST_F(StripeProviderFake, ABadKeyIsAuthenticationFailedWithoutRetrying) {
  fake.queue({401, stripe_error("invalid_request_error", "", kStripeWords)});
  expect_error(error_of(provider->list_customers({})), 503, "Stripe authentication failed");
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST_F(StripeProviderFake, OtherClientErrorsAreRejected) {
  fake.queue({400, stripe_error("invalid_request_error", "parameter_unknown", kStripeWords)});
  expect_error(error_of(provider->create_checkout_session(checkout())), 502,
               "Stripe rejected the request");
  fake.queue({200, "not json"});
  expect_error(error_of(provider->check_health()), 503, "Stripe service unavailable");
  fake.queue({200, R"({"object":"checkout.session"})"});
  expect_error(error_of(provider->create_checkout_session(checkout())), 503,
               "Stripe service unavailable");
}

// Stripe refuses to change a canceled subscription as it refuses any bad request; the
// subscription, read after the refusal, tells the two apart. A cancel is one call otherwise.
TEST_F(StripeProviderFake, CancellingACanceledSubscriptionIsSaidPlainly) {
  auto canceled = subscription_object("sub_1", "si_1", "price_a");
  canceled["status"] = "canceled";
  fake.add_subscription(canceled);
  expect_error(error_of(provider->cancel_at_period_end("sub_1")), 409,
               "Subscription is already canceled");
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].target, "/v1/subscriptions/sub_1");

  fake.add_subscription(subscription_object("sub_2", "si_2", "price_a"));
  fake.queue({400, stripe_error("invalid_request_error", "parameter_unknown", kStripeWords)});
  expect_error(error_of(provider->cancel_at_period_end("sub_2")), 502,
               "Stripe rejected the request");
  EXPECT_EQ(fake.requests().size(), 4u);
  EXPECT_TRUE(run_blocking(provider->cancel_at_period_end("sub_2")).cancel_at_period_end);
  EXPECT_EQ(fake.requests().size(), 5u);
}

TEST_F(StripeProviderFake, ReadsTheFeeNetAndCardOfTheChargeThatPaidAnInvoice) {
  // At 2025-03-31 and later invoices name no charge: this one read asks 2023-10-16 regardless.
  auto newer = options();
  newer.api_version = "2025-03-31.basil";
  use(newer);
  fake.queue({200, invoice_paid_by("in_1", R"({"id":"ch_1","object":"charge","amount":49900,
    "currency":"usd","balance_transaction":{"id":"txn_1","object":"balance_transaction",
      "amount":49900,"currency":"usd","fee":1477,"net":48423},
    "payment_method_details":{"type":"card","card":{"brand":"visa","last4":"4242",
      "exp_month":12,"exp_year":2030,"fingerprint":"not ours to keep","country":"US"}}})")});
  const auto details = run_blocking(provider->invoice_charge("in_1"));
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->charge_id, "ch_1");
  EXPECT_EQ(details->payment_intent_id, "pi_for_in_1");
  EXPECT_EQ(details->fee, 1477);
  EXPECT_EQ(details->net, 48423);
  EXPECT_EQ(
      details->payment_method,
      R"({"type":"card","card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030}})");
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/v1/invoices/in_1?expand%5B%5D=charge.balance_transaction");
  EXPECT_EQ(requests[0].header("stripe-version"), "2023-10-16");

  // A charge in euros on an account that settles in dollars: the balance's fee is in dollars,
  // the payment in euros. The fee comes back at the balance's rate (10,850 cents for 10,000).
  fake.queue({200, invoice_paid_by("in_1", R"({"id":"ch_3","object":"charge","amount":10000,
    "currency":"eur","balance_transaction":{"id":"txn_3","object":"balance_transaction",
      "amount":10850,"currency":"usd","exchange_rate":1.085,"fee":345,"net":10505}})")});
  const auto converted = run_blocking(provider->invoice_charge("in_1"));
  ASSERT_TRUE(converted.has_value());
  EXPECT_EQ(converted->fee, 318);  // 345 x 10,000 / 10,850 = 317.97
  EXPECT_EQ(converted->net, 9682);
  fake.queue({200, invoice_paid_by("in_1", R"({"id":"ch_4","object":"charge","amount":10000,
    "currency":"usd","balance_transaction":{"id":"txn_4","object":"balance_transaction",
      "amount":10000,"currency":"usd","fee":320,"net":9680}})")});
  const auto same = run_blocking(provider->invoice_charge("in_1"));
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->fee, 320);
  EXPECT_EQ(same->net, 9680);

  // Paid outside Stripe: no charge, so no fee, and all of it is net.
  fake.queue({200, R"({"id":"in_1","object":"invoice","amount_paid":49900,"charge":null,
    "paid_out_of_band":true})"});
  const auto outside = run_blocking(provider->invoice_charge("in_1"));
  ASSERT_TRUE(outside.has_value());
  EXPECT_EQ(outside->charge_id, std::nullopt);
  EXPECT_EQ(outside->fee, 0);
  EXPECT_EQ(outside->net, 49900);
  // No charge otherwise (its cash balance, say): not guessed at, no details.
  fake.queue({200, R"({"id":"in_1","object":"invoice","amount_paid":49900,"charge":null,
    "paid_out_of_band":false})"});
  EXPECT_EQ(run_blocking(provider->invoice_charge("in_1")), std::nullopt);
  // No charge member at all: not the version asked for.
  fake.queue({200, R"({"id":"in_1","object":"invoice","amount_paid":49900})"});
  expect_error(error_of(provider->invoice_charge("in_1")), 503, "Stripe service unavailable");

  // Not expanded (or not settled yet): Stripe's answer is not what was asked for.
  fake.queue({200, invoice_paid_by("in_1", R"("ch_2")")});
  expect_error(error_of(provider->invoice_charge("in_1")), 503, "Stripe service unavailable");
  fake.queue({200, invoice_paid_by(
                       "in_1", R"({"id":"ch_2","object":"charge","balance_transaction":"t"})")});
  expect_error(error_of(provider->invoice_charge("in_1")), 503, "Stripe service unavailable");
  fake.queue(
      {404, stripe_error("invalid_request_error", "resource_missing", kStripeWords, "", "id")});
  expect_error(error_of(provider->invoice_charge("in_x")), 404, "No such invoice: in_x");
  EXPECT_EQ(metrics.calls.value(StripeEndpoint::retrieve_invoice, StripeCallOutcome::not_found),
            1u);
}

// One count per call, however many attempts it took, by endpoint and how it ended.
TEST_F(StripeProviderFake, CountsEachCallByEndpointAndOutcome) {
  using enum StripeEndpoint;
  using enum StripeCallOutcome;
  fake.add_subscription(subscription_object("sub_1", "si_1", "price_a"));
  run_blocking(provider->get_subscription("sub_1"));
  fake.queue({500, stripe_error("api_error", "", "try again")});
  run_blocking(provider->cancel_at_period_end("sub_1"));
  run_blocking(provider->change_price("sub_1", "price_b", PlanType::pro, BillingCycle::yearly));
  error_of(provider->get_subscription("sub_x"));
  fake.queue({402, stripe_error("card_error", "card_declined", kStripeWords)});
  error_of(provider->create_checkout_session(checkout()));
  fake.queue({400, stripe_error("invalid_request_error", "parameter_unknown", kStripeWords)});
  error_of(provider->create_checkout_session(checkout()));
  fake.queue({401, stripe_error("invalid_request_error", "", kStripeWords)});
  error_of(provider->list_customers({}));
  for (int i = 0; i < 3; ++i) fake.queue({503, "down"});
  error_of(provider->list_invoices("cus_1", {}));
  fake.queue({200, "{}"});  // not a list: unreadable
  error_of(provider->list_subscriptions({}));

  const auto calls = [&](StripeEndpoint endpoint, StripeCallOutcome outcome) {
    return metrics.calls.value(endpoint, outcome);
  };
  EXPECT_EQ(calls(retrieve_subscription, ok), 2u);  // one of them by change_price
  EXPECT_EQ(calls(retrieve_subscription, not_found), 1u);
  EXPECT_EQ(calls(update_subscription, ok), 2u);
  EXPECT_EQ(calls(create_checkout_session, card_error), 1u);
  EXPECT_EQ(calls(create_checkout_session, rejected), 1u);
  EXPECT_EQ(calls(list_customers, authentication_failed), 1u);
  EXPECT_EQ(calls(list_invoices, unavailable), 1u);
  EXPECT_EQ(calls(list_subscriptions, unavailable), 1u);
  std::uint64_t total = 0;
  for (std::size_t e = 0; e < EnumNames<StripeEndpoint>::names.size(); ++e)
    for (std::size_t o = 0; o < EnumNames<StripeCallOutcome>::names.size(); ++o)
      total += calls(static_cast<StripeEndpoint>(e), static_cast<StripeCallOutcome>(o));
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(metrics.retries.value(update_subscription), 1u);
  EXPECT_EQ(metrics.retries.value(list_invoices), 2u);
  EXPECT_EQ(metrics.retries.value(retrieve_subscription), 0u);
  EXPECT_EQ(metrics.latency.count(update_subscription), 2u);
  EXPECT_EQ(metrics.latency.count(list_invoices), 1u);
}

TEST_F(StripeProviderFake, StripesWordsGoToTheLogAndTheKeyNowhere) {
  // Stripe's message (which here even repeats our key) must not reach the caller; the log keeps
  // the message for us but never the key.
  const std::string message = std::string(kStripeWords) + " for key " + std::string(kSecretKey);
  const std::vector<Reply> replies{
      {402, stripe_error("card_error", "card_declined", message)},
      {401, stripe_error("invalid_request_error", "", message)},
      {404, stripe_error("invalid_request_error", "resource_missing", message, "", "id")},
      {400, stripe_error("invalid_request_error", "", message)},
      {500, stripe_error("api_error", "", message)},
  };
  for (const auto& reply : replies) {
    // Retried answers are sent for each of the three attempts, the others once.
    for (int i = 0; i < (reply.status >= 500 ? 3 : 1); ++i) fake.queue(reply);
    const auto error = error_of(provider->cancel_at_period_end("sub_x"));
    const auto detail = boost::json::serialize(error.detail);
    EXPECT_EQ(detail.find(kStripeWords), std::string::npos) << detail;
    EXPECT_EQ(detail.find(kSecretKey), std::string::npos) << detail;
    EXPECT_EQ(std::string(error.what()).find(kSecretKey), std::string::npos);
  }
  auto unreachable = options();
  unreachable.api_base = "http://127.0.0.1:1";
  use(unreachable);
  error_of(provider->check_health());

  const auto logged = log.text();
  EXPECT_NE(logged.find(kStripeWords), std::string::npos) << logged;
  EXPECT_NE(logged.find("HTTP 402"), std::string::npos) << logged;
  EXPECT_NE(logged.find("/v1/subscriptions/sub_x"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(kSecretKey), std::string::npos) << logged;
  EXPECT_EQ(logged.find("sk_test_"), std::string::npos) << logged;
}

}  // namespace
}  // namespace billing
