// The local payment provider: its checkout and portal pages, renewals on its own clock, its lists,
// and the signed events it delivers (checked here as the webhook checks them, and at the end
// applied by the service's own webhook receiver).
#include "payments/local/local_provider.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "kit/api_error.hpp"
#include "kit/run_blocking.hpp"
#include "kit/time.hpp"
#include "payments/local/cards.hpp"
#include "payments/local/objects.hpp"
#include "payments/local/pages.hpp"
#include "payments/local/repo.hpp"
#include "payments/repo.hpp"
#include "payments/webhook.hpp"
#include "plans/repo.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/sqlite_db.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kSecret = "whsec_local_test";
constexpr std::string_view kBaseUrl = "http://127.0.0.1:8000";
constexpr std::int64_t kStart = 1'700'000'000;  // 2023-11-14T22:13:20Z
constexpr std::int64_t kDay = 24 * 60 * 60;
// Where monthly periods from kStart end: whole calendar months later (2023-12-14, 2024-01-14,
// 2024-02-14, 2024-03-14, 2024-04-14), 30, 31, 31, 29 and 31 days apart.
constexpr std::int64_t month_end(int months) {
  constexpr std::array<std::int64_t, 6> days{0, 30, 61, 92, 121, 152};
  return kStart + days.at(static_cast<std::size_t>(months)) * kDay;
}
constexpr std::string_view kVisa = "4242424242424242";
constexpr std::string_view kDeclined = "4000000000000002";
constexpr std::string_view kNoFunds = "4000000000009995";
constexpr std::string_view kAuthenticate = "4000000000003220";
constexpr std::string_view kFailsLater = "4000000000000341";

const Catalog& catalog() {
  static const Catalog c = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  return c;
}

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t integer(const json::object& o, std::string_view key) {
  return o.at(key).as_int64();
}

std::string text(const json::object& o, std::string_view key) {
  return std::string(o.at(key).as_string());
}

struct Delivery {
  std::string type;
  json::object event;
  json::object object;  // data.object
};

// One provider, its pages on a Router, and every event it delivers, verified as the webhook
// verifies them.
class LocalPayments : public ::testing::Test {
 protected:
  ManualClock clock{TimePoint(std::chrono::seconds(kStart))};
  const PriceMap prices = PriceMap::local();
  std::vector<Delivery> delivered;
  bool refuse_deliveries = false;
  int delivery_attempts = 0;  // refused or not
  // The webhook of the service, when a test wires one in; else deliveries are only recorded.
  std::function<asio::awaitable<void>(std::string, std::string)> webhook;
  const std::string db_path = testing::make_temp_dir() + "/billing.db";
  std::unique_ptr<Db> db = open_db(db_path);
  LocalProvider provider{catalog(),
                         prices,
                         clock,
                         *db,
                         "test",
                         std::string(kSecret),
                         std::string(kBaseUrl),
                         [this](std::string signature, std::string payload) {
                           return receive(std::move(signature), std::move(payload));
                         }};
  Router router;

  LocalPayments() { add_local_payment_routes(router, provider); }

  static std::unique_ptr<Db> open_db(const std::string& path) {
    auto opened = std::make_unique<SqliteDb>(path);
    opened->migrate();
    return opened;
  }

  // Runs SQL on the provider's database beside it: triggers that make its writes fail.
  void sql(std::string_view script) {
    SqliteConnection(db_path, SqliteConnection::Mode::read_write).exec(script);
  }

  asio::awaitable<void> receive(std::string signature, std::string payload) {
    // Signed at the service's clock, whatever the provider's says.
    EXPECT_THAT(signature, StartsWith("t=" + std::to_string(unix_seconds(clock.now())) + ","));
    EXPECT_TRUE(WebhookSignature(kSecret).verify(signature, payload, clock.now()));
    provider.now();  // takes the provider's mutex: a delivery must not run under it
    ++delivery_attempts;
    if (refuse_deliveries) throw ApiError(500, "Webhook processing failed");
    auto event = json::parse(payload).as_object();
    auto object = event.at("data").at("object").as_object();
    if (text(event, "type").starts_with("invoice.")) check_balances(text(event, "type"), object);
    delivered.push_back({text(event, "type"), std::move(event), std::move(object)});
    if (webhook) co_await webhook(std::move(signature), std::move(payload));
  }

  // Every invoice adds up as Stripe's do: its lines to its total, which with the customer's
  // balance before it is what it asks now and their balance after; and each invoice starts from
  // the balance the customer's invoice before it left.
  std::map<std::string, Cents, std::less<>> balances;  // by customer
  std::set<std::string, std::less<>> invoices_seen;
  void check_balances(std::string_view type, const json::object& invoice) {
    Cents lines = 0;
    for (const auto& line : invoice.at("lines").at("data").as_array())
      lines += integer(line.as_object(), "amount");
    const std::string id = text(invoice, "id");
    EXPECT_EQ(lines, integer(invoice, "total")) << id;
    EXPECT_EQ(integer(invoice, "total") + integer(invoice, "starting_balance"),
              integer(invoice, "amount_due") + integer(invoice, "ending_balance"))
        << id;
    Cents& balance = balances[text(invoice, "customer")];
    // A voided invoice gives back the balance it took (an open one carried none).
    if (type == "invoice.voided") balance += integer(invoice, "starting_balance");
    if (!invoices_seen.insert(id).second) return;  // a later event of an invoice
    EXPECT_EQ(integer(invoice, "starting_balance"), balance) << id;
    balance = integer(invoice, "ending_balance");
  }

  // The last delivered event of `type`'s object.
  const json::object& last_delivered(std::string_view type) const {
    for (auto it = delivered.rbegin(); it != delivered.rend(); ++it)
      if (it->type == type) return it->object;
    throw std::runtime_error("no " + std::string(type) + " delivered");
  }
  std::vector<std::string> delivered_types() const {
    std::vector<std::string> types;
    for (const auto& d : delivered) types.push_back(d.type);
    return types;
  }

  CheckoutRequest checkout_request(std::string entity_id = "h1",
                                   BillingCycle cycle = BillingCycle::monthly,
                                   PlanType plan_type = PlanType::lite) const {
    const PricedPlan plan{EntityKind::hospital, plan_type, cycle};
    return CheckoutRequest{.entity = {EntityKind::hospital, std::move(entity_id)},
                           .plan_type = plan_type,
                           .cycle = cycle,
                           .price_id = std::string(*prices.price_for(plan)),
                           .success_url = "http://app.test/paid",
                           .cancel_url = "http://app.test/plans"};
  }

  // The session id of a new checkout.
  std::string open_checkout(CheckoutRequest request) {
    const auto url = run_blocking(provider.create_checkout_session(std::move(request)));
    const std::string prefix = std::string(kBaseUrl) + "/local-pay/checkout/";
    EXPECT_THAT(url, StartsWith(prefix + "cs_"));
    return url.substr(prefix.size());
  }

  Response call(Method method, const std::string& path, const std::string& body = "") {
    Request request{.method = method, .path = path, .body = body};
    const auto match = router.find(request);
    if (!match.route) throw std::logic_error("no route for " + path);
    Call c{request, match.route};
    return run_blocking(match.route->handler(c));
  }

  // Card fields as a browser posts them: spaces as '+', the slash escaped.
  static std::string card_form(std::string_view number, std::string_view expiry = "12%2F30") {
    std::string spaced;
    for (std::size_t i = 0; i < number.size(); i += 4) {
      if (i > 0) spaced += '+';
      spaced += number.substr(i, 4);
    }
    return "number=" + spaced + "&exp=" + std::string(expiry) + "&cvc=123";
  }

  Response pay(const std::string& session_id, std::string_view number,
               std::string_view expiry = "12%2F30") {
    return call(Method::post, "/local-pay/checkout/" + session_id, card_form(number, expiry));
  }

  // A paid checkout of `request` with `number`: its subscription.
  Subscription subscribe(CheckoutRequest request, std::string_view number = kVisa) {
    const auto response = pay(open_checkout(std::move(request)), number);
    EXPECT_EQ(response.status, 200) << response.body;
    return run_blocking(provider.get_subscription(text(delivered.back().object, "subscription")));
  }
  Subscription subscribe(std::string_view number = kVisa) {
    return subscribe(checkout_request(), number);
  }

  // The portal session id for `customer`.
  std::string open_portal(const std::string& customer) {
    const auto url =
        run_blocking(provider.create_portal_session(customer, "http://app.test/billing"));
    const std::string prefix = std::string(kBaseUrl) + "/local-pay/portal/";
    EXPECT_THAT(url, StartsWith(prefix + "bps_"));
    return url.substr(prefix.size());
  }

  RenewalReport advance(std::chrono::seconds by) {
    delivered.clear();
    return run_blocking(provider.advance(by));
  }
  // On to `unix_seconds` on the provider's clock (a period's end, say).
  RenewalReport advance_to(std::int64_t unix_seconds) {
    return advance(std::chrono::seconds(unix_seconds) -
                   std::chrono::floor<std::chrono::seconds>(provider.now().time_since_epoch()));
  }

  // The provider as a restart makes it: a new one on the same database and account, resumed.
  std::unique_ptr<LocalProvider> restarted(const Catalog& offering = catalog()) {
    auto again = another(offering);
    run_blocking(again->resume());
    return again;
  }
  // A provider on the same database and account, not resumed.
  std::unique_ptr<LocalProvider> another(const Catalog& offering) {
    return std::make_unique<LocalProvider>(
        offering, prices, clock, *db, "test", std::string(kSecret), std::string(kBaseUrl),
        [this](std::string signature, std::string payload) {
          return receive(std::move(signature), std::move(payload));
        });
  }
};

// What a provider lists, as lines to compare: subscriptions, then the customer's invoices,
// then customers.
std::vector<std::string> listed(LocalProvider& p, const std::string& customer) {
  std::vector<std::string> lines;
  for (const auto& s : run_blocking(p.list_subscriptions({.limit = 100})).data)
    lines.push_back(fmt::format("{} {} {} {} {}-{} {}", s.id, s.status, s.customer, s.price_id,
                                s.current_period_start, s.current_period_end,
                                s.cancel_at_period_end));
  for (const auto& i : run_blocking(p.list_invoices(customer, {.limit = 100})).data)
    lines.push_back(fmt::format("{} {} {} {} {} {}", i.id, i.status, i.amount_due, i.amount_paid,
                                i.created, i.subscription.value_or("-")));
  for (const auto& c : run_blocking(p.list_customers({.limit = 100})).data)
    lines.push_back(fmt::format("{} {} {}", c.id, c.email.value_or("-"), c.created));
  return lines;
}

TEST_F(LocalPayments, CheckoutWithTheSucceedingCardDeliversThreeEventsInOrder) {
  const auto session = open_checkout(checkout_request());
  const auto page = call(Method::get, "/local-pay/checkout/" + session);
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, ContentType::html);
  EXPECT_THAT(page.body, HasSubstr("Lite Plan (Hospital)"));
  EXPECT_THAT(page.body, HasSubstr("$499.00 per month"));
  EXPECT_THAT(page.body, HasSubstr("action=\"/local-pay/checkout/" + session + "\""));
  EXPECT_THAT(page.body, HasSubstr("4242 4242 4242 4242"));
  EXPECT_TRUE(delivered.empty());

  const auto paid = pay(session, kVisa);
  EXPECT_EQ(paid.status, 200);
  EXPECT_THAT(paid.body, HasSubstr("Payment succeeded"));
  EXPECT_THAT(paid.body, HasSubstr("$499.00 paid. The subscription is active."));
  EXPECT_THAT(paid.body, HasSubstr("href=\"http://app.test/paid\""));
  ASSERT_THAT(delivered_types(),
              ElementsAre("checkout.session.completed", "customer.subscription.created",
                          "invoice.payment_succeeded"));
  for (const auto& d : delivered) {
    EXPECT_THAT(text(d.event, "id"), StartsWith("evt_"));
    EXPECT_EQ(text(d.event, "object"), "event");
    EXPECT_EQ(text(d.event, "api_version"), "2023-10-16");
    EXPECT_EQ(integer(d.event, "created"), kStart);
    EXPECT_EQ(d.event.at("livemode"), json::value(false));
  }
  const json::value metadata = json::object{
      {"role", "hospital"}, {"role_entity_id", "h1"}, {"plan", "lite"}, {"cycle", "monthly"}};

  const auto& completed = delivered[0].object;
  const auto customer = text(completed, "customer");
  const auto subscription_id = text(completed, "subscription");
  EXPECT_THAT(customer, StartsWith("cus_"));
  EXPECT_THAT(subscription_id, StartsWith("sub_"));
  EXPECT_EQ(text(completed, "id"), session);
  EXPECT_EQ(text(completed, "object"), "checkout.session");
  EXPECT_EQ(text(completed, "mode"), "subscription");
  EXPECT_EQ(text(completed, "status"), "complete");
  EXPECT_EQ(text(completed, "payment_status"), "paid");
  EXPECT_EQ(text(completed, "client_reference_id"), "h1");
  EXPECT_EQ(integer(completed, "amount_total"), 49900);
  EXPECT_EQ(text(completed, "currency"), "usd");
  EXPECT_EQ(completed.at("metadata"), metadata);

  const auto& created = delivered[1].object;
  EXPECT_EQ(text(created, "id"), subscription_id);
  EXPECT_EQ(text(created, "object"), "subscription");
  EXPECT_EQ(text(created, "customer"), customer);
  EXPECT_EQ(text(created, "status"), "active");
  EXPECT_EQ(created.at("cancel_at_period_end"), json::value(false));
  EXPECT_EQ(integer(created, "current_period_start"), kStart);
  EXPECT_EQ(integer(created, "current_period_end"), month_end(1));
  const auto& item = created.at("items").at("data").as_array().at(0).as_object();
  EXPECT_THAT(text(item, "id"), StartsWith("si_"));
  EXPECT_EQ(item.at("price").at("id"), json::value("price_local_hospital_lite_monthly"));
  EXPECT_EQ(created.at("metadata"), metadata);

  const auto& invoice = delivered[2].object;
  EXPECT_THAT(text(invoice, "id"), StartsWith("in_"));
  EXPECT_EQ(text(invoice, "object"), "invoice");
  EXPECT_EQ(text(invoice, "customer"), customer);
  EXPECT_EQ(text(invoice, "subscription"), subscription_id);
  EXPECT_EQ(text(invoice, "status"), "paid");
  EXPECT_EQ(integer(invoice, "amount_due"), 49900);
  EXPECT_EQ(integer(invoice, "amount_paid"), 49900);
  EXPECT_EQ(text(invoice, "currency"), "usd");
  EXPECT_EQ(integer(invoice, "created"), kStart);
  EXPECT_EQ(text(invoice, "billing_reason"), "subscription_create");
  EXPECT_THAT(text(invoice, "payment_intent"), StartsWith("pi_"));
  const auto& charge = invoice.at("charge").as_object();
  EXPECT_THAT(text(charge, "id"), StartsWith("ch_"));
  EXPECT_EQ(text(charge, "object"), "charge");
  EXPECT_EQ(integer(charge, "amount"), 49900);
  EXPECT_EQ(charge.at("balance_transaction"), json::parse(R"({"fee":1477,"net":48423})"));
  EXPECT_EQ(charge.at("payment_method_details"),
            json::parse(R"({"type":"card","card":{"brand":"visa","last4":"4242",)"
                        R"("exp_month":12,"exp_year":2030}})"));
  EXPECT_EQ(integer(invoice, "period_start"), kStart);
  EXPECT_EQ(integer(invoice, "period_end"), month_end(1));
  EXPECT_EQ(invoice.at("subscription_details").at("metadata"), metadata);
  const auto& line = invoice.at("lines").at("data").as_array().at(0).as_object();
  EXPECT_EQ(line.at("price").at("id"), json::value("price_local_hospital_lite_monthly"));
  EXPECT_EQ(line.at("period"), json::value(json::object{{"start", kStart}, {"end", month_end(1)}}));
  EXPECT_EQ(invoice.at("status_transitions").at("paid_at"), json::value(kStart));

  const auto subscription = run_blocking(provider.get_subscription(subscription_id));
  EXPECT_EQ(subscription.status, "active");
  EXPECT_EQ(subscription.customer, customer);
  EXPECT_EQ(subscription.price_id, "price_local_hospital_lite_monthly");
  EXPECT_EQ(subscription.current_period_end, month_end(1));
  EXPECT_EQ(
      subscription.metadata,
      (Metadata{
          {"role", "hospital"}, {"role_entity_id", "h1"}, {"plan", "lite"}, {"cycle", "monthly"}}));
}

// Periods end whole calendar months after the subscription began, as Stripe's: one begun on
// January 31 renews on February 29 (2024 is a leap year), then on March 31, not the 29th.
TEST_F(LocalPayments, PeriodsEndWholeCalendarMonthsAfterTheStart) {
  constexpr std::int64_t kJanuary31 = 1'706'691'600;  // 2024-01-31T09:00:00Z
  advance_to(kJanuary31);
  const auto subscription = subscribe();
  EXPECT_EQ(subscription.billing_cycle_anchor, kJanuary31);
  EXPECT_EQ(integer(delivered[1].object, "billing_cycle_anchor"), kJanuary31);
  EXPECT_EQ(subscription.current_period_end, kJanuary31 + 29 * kDay);  // 2024-02-29
  EXPECT_EQ(advance_to(kJanuary31 + 29 * kDay - 1).renewed, 0);
  EXPECT_EQ(advance(std::chrono::seconds(1)).renewed, 1);
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).current_period_end,
            kJanuary31 + 60 * kDay);  // 2024-03-31
  EXPECT_EQ(advance_to(kJanuary31 + 60 * kDay).renewed, 1);
  const auto april = run_blocking(provider.get_subscription(subscription.id));
  EXPECT_EQ(april.current_period_start, kJanuary31 + 60 * kDay);
  EXPECT_EQ(april.current_period_end, kJanuary31 + 90 * kDay);  // 2024-04-30
  EXPECT_EQ(april.billing_cycle_anchor, kJanuary31);
}

TEST_F(LocalPayments, YearlyCheckoutChargesTheYearlyPriceForAYear) {
  subscribe(checkout_request("h1", BillingCycle::yearly));
  const auto& completed = delivered[0].object;
  EXPECT_EQ(integer(completed, "amount_total"), 479040);
  EXPECT_EQ(completed.at("metadata").at("cycle"), json::value("yearly"));
  // A calendar year: 2024 has a February 29.
  EXPECT_EQ(integer(delivered[1].object, "current_period_end"), kStart + 366 * kDay);
  const auto& invoice = delivered[2].object;
  EXPECT_EQ(integer(invoice, "amount_paid"), 479040);
  // 2.9% of 4790.40 is 138.9216, rounded to 138.92, plus 0.30.
  EXPECT_EQ(invoice.at("charge").at("balance_transaction"),
            json::parse(R"({"fee":13922,"net":465118})"));
}

TEST_F(LocalPayments, CardFeeIsStripesUsPricingRoundedHalfUpInCents) {
  EXPECT_EQ(local::card_fee(49900), 1477);
  EXPECT_EQ(local::card_fee(479040), 13922);
  EXPECT_EQ(local::card_fee(4900), 172);  // 142.1 -> 142
  EXPECT_EQ(local::card_fee(500), 45);    // 14.5 -> 15: half rounds up
  EXPECT_EQ(local::card_fee(1500), 74);   // 43.5 -> 44
  EXPECT_EQ(local::card_fee(1), 30);
  EXPECT_EQ(local::dollars(479040), "$4,790.40");  // as the specification writes it
  EXPECT_EQ(local::dollars(99999999999), "$999,999,999.99");
  EXPECT_EQ(local::dollars(100000), "$1,000.00");
  EXPECT_EQ(local::dollars(99999), "$999.99");
  EXPECT_EQ(local::dollars(5), "$0.05");
  EXPECT_EQ(local::dollars(-2900), "-$29.00");  // a credit
  EXPECT_EQ(local::dollars(-85914), "-$859.14");
  EXPECT_EQ(local::dollars(std::numeric_limits<Cents>::min()), "-$92,233,720,368,547,758.08");
  EXPECT_EQ(local::dollars(std::numeric_limits<Cents>::max()), "$92,233,720,368,547,758.07");
}

TEST_F(LocalPayments, DeclinedCardsAnswer402WithoutEventsAndTheSessionStaysOpen) {
  const auto session = open_checkout(checkout_request());
  const auto declined = pay(session, kDeclined);
  EXPECT_EQ(declined.status, 402);
  EXPECT_EQ(declined.content_type, ContentType::html);
  EXPECT_THAT(declined.body, HasSubstr("Your card was declined"));
  EXPECT_THAT(declined.body, HasSubstr("href=\"/local-pay/checkout/" + session + "\""));
  const auto no_funds = pay(session, kNoFunds);
  EXPECT_EQ(no_funds.status, 402);
  EXPECT_THAT(no_funds.body, HasSubstr("Your card has insufficient funds"));
  EXPECT_TRUE(delivered.empty());
  EXPECT_TRUE(run_blocking(provider.list_subscriptions({})).data.empty());

  EXPECT_EQ(call(Method::get, "/local-pay/checkout/" + session).status, 200);
  EXPECT_EQ(pay(session, kVisa).status, 200);
  EXPECT_EQ(delivered.size(), 3u);
}

TEST_F(LocalPayments, AuthenticationCardIsConfirmedThenPaysAsTheSucceedingCardDoes) {
  const auto session = open_checkout(checkout_request());
  const auto asked = pay(session, kAuthenticate);
  EXPECT_EQ(asked.status, 200);
  EXPECT_THAT(asked.body, HasSubstr("Authentication required"));
  EXPECT_THAT(asked.body, HasSubstr("action=\"/local-pay/checkout/" + session + "/confirm\""));
  EXPECT_TRUE(delivered.empty());

  const auto confirmed = call(Method::post, "/local-pay/checkout/" + session + "/confirm");
  EXPECT_EQ(confirmed.status, 200);
  EXPECT_THAT(confirmed.body, HasSubstr("Payment succeeded"));
  ASSERT_THAT(delivered_types(),
              ElementsAre("checkout.session.completed", "customer.subscription.created",
                          "invoice.payment_succeeded"));
  EXPECT_EQ(delivered[2].object.at("charge").at("payment_method_details").at("card").at("last4"),
            json::value("3220"));

  // Set up by the authentication, the card pays its renewals.
  EXPECT_EQ(advance(std::chrono::days(30)).renewed, 1);
}

TEST_F(LocalPayments, ConfirmWithoutAPendingAuthenticationIs409) {
  const auto session = open_checkout(checkout_request());
  EXPECT_EQ(call(Method::post, "/local-pay/checkout/" + session + "/confirm").status, 409);
  // Another card after the authentication step replaces the card awaiting it.
  pay(session, kAuthenticate);
  EXPECT_EQ(pay(session, kDeclined).status, 402);
  EXPECT_EQ(call(Method::post, "/local-pay/checkout/" + session + "/confirm").status, 409);
  EXPECT_TRUE(delivered.empty());
}

TEST_F(LocalPayments, UnknownCardsAndUnreadableFormsAre400) {
  const auto session = open_checkout(checkout_request());
  const auto unknown = pay(session, "5555555555554444");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("Unknown test card"));
  const auto path = "/local-pay/checkout/" + session;
  EXPECT_EQ(call(Method::post, path, "exp=12%2F30").status, 400);  // no number
  EXPECT_EQ(call(Method::post, path, card_form(kVisa, "13%2F30")).status, 400);
  EXPECT_EQ(call(Method::post, path, card_form(kVisa, "1230")).status, 400);
  EXPECT_EQ(call(Method::post, path, "number=%zz").status, 400);
  const auto expired = call(Method::post, path, card_form(kVisa, "10%2F23"));
  EXPECT_EQ(expired.status, 402);
  EXPECT_THAT(expired.body, HasSubstr("Your card has expired"));
  EXPECT_TRUE(delivered.empty());

  // No expiry: any future date will do; the card records one five years on.
  EXPECT_EQ(call(Method::post, path, "number=4242424242424242").status, 200);
  const auto& card = delivered[2].object.at("charge").at("payment_method_details").at("card");
  EXPECT_EQ(card.at("exp_month"), json::value(12));
  EXPECT_EQ(card.at("exp_year"), json::value(2028));
}

TEST_F(LocalPayments, ACompletedSessionIs409AndAnUnknownOneIs404) {
  const auto session = open_checkout(checkout_request());
  pay(session, kVisa);
  delivered.clear();
  for (const auto& response :
       {call(Method::get, "/local-pay/checkout/" + session), pay(session, kVisa),
        call(Method::post, "/local-pay/checkout/" + session + "/confirm")}) {
    EXPECT_EQ(response.status, 409);
    EXPECT_THAT(response.body, HasSubstr("This checkout is already complete"));
  }
  for (const auto& response :
       {call(Method::get, "/local-pay/checkout/cs_nope"), pay("cs_nope", kVisa),
        call(Method::post, "/local-pay/checkout/cs_nope/confirm"),
        call(Method::get, "/local-pay/portal/bps_nope")}) {
    EXPECT_EQ(response.status, 404);
    EXPECT_EQ(response.content_type, ContentType::html);
  }
  EXPECT_THAT(call(Method::get, "/local-pay/checkout/cs_nope").body,
              HasSubstr("No such checkout session: cs_nope"));
  // An id that is no id (not UTF-8): refused as a page too.
  for (const auto& response : {call(Method::get, "/local-pay/checkout/%ff"), pay("%ff", kVisa),
                               call(Method::get, "/local-pay/portal/%ff")}) {
    EXPECT_EQ(response.status, 422);
    EXPECT_EQ(response.content_type, ContentType::html);
  }
  EXPECT_TRUE(delivered.empty());
}

// A checkout can be paid for a day, as Stripe's: then it expires (checkout.session.expired, when
// the clock passes that time), and its page and forms answer 410, also before the clock is
// advanced: a link opened long ago cannot buy the plan it named then.
TEST_F(LocalPayments, ACheckoutUnpaidForADayExpires) {
  const auto unpaid = open_checkout(checkout_request());
  const auto authenticating = open_checkout(checkout_request("h2"));
  pay(authenticating, kAuthenticate);
  EXPECT_EQ(advance(std::chrono::days(1) - std::chrono::seconds(1)).expired_checkouts, 0);
  EXPECT_EQ(call(Method::get, "/local-pay/checkout/" + unpaid).status, 200);

  EXPECT_EQ(advance(std::chrono::seconds(1)).expired_checkouts, 2);
  ASSERT_THAT(delivered_types(),
              ElementsAre("checkout.session.expired", "checkout.session.expired"));
  const auto& expired = delivered[0].object;
  EXPECT_EQ(text(expired, "id"), unpaid);
  EXPECT_EQ(text(expired, "status"), "expired");
  EXPECT_EQ(text(expired, "payment_status"), "unpaid");
  EXPECT_EQ(integer(expired, "expires_at"), kStart + kDay);
  EXPECT_EQ(integer(delivered[0].event, "created"), kStart + kDay);
  delivered.clear();
  for (const auto& response :
       {call(Method::get, "/local-pay/checkout/" + unpaid), pay(unpaid, kVisa),
        call(Method::post, "/local-pay/checkout/" + authenticating + "/confirm")}) {
    EXPECT_EQ(response.status, 410);
    EXPECT_THAT(response.body, HasSubstr("This checkout has expired: start a new one"));
  }
  EXPECT_EQ(advance(std::chrono::days(1)).expired_checkouts, 0);  // once
  EXPECT_TRUE(delivered.empty());

  // Past its day on the service's clock alone, not yet expired by an advance: not payable.
  const auto late = open_checkout(checkout_request("h3"));
  clock.advance(std::chrono::days(1));
  EXPECT_EQ(pay(late, kVisa).status, 410);
  EXPECT_TRUE(delivered.empty());
}

// Changes that make events in one second of the service's clock are dated a second apart, the
// later one later: the webhook orders a plan's events by their whole-second `created`, and the
// deliveries of two changes made at once overlap. A renewal that fails, then the invoice paid in
// the portal within the same second: the payment's events are newer than the failure's, so the
// plan ends active in whichever order they arrive.
TEST_F(LocalPayments, ChangesInOneSecondAreDatedInTheOrderMade) {
  const auto subscription = subscribe(kFailsLater);
  EXPECT_EQ(advance(std::chrono::days(30)).failed, 1);
  const auto failed_at = integer(delivered.at(0).event, "created");
  EXPECT_EQ(failed_at, month_end(1));
  const auto portal = open_portal(subscription.customer);
  const auto unpaid = run_blocking(provider.list_invoices(subscription.customer, {})).data.at(0);
  delivered.clear();
  EXPECT_EQ(call(Method::post, "/local-pay/portal/" + portal + "/pay",
                 "invoice=" + unpaid.id + "&" + card_form(kVisa))
                .status,
            200);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  for (const auto& d : delivered) EXPECT_EQ(integer(d.event, "created"), failed_at + 1);
  EXPECT_EQ(provider.now(), TimePoint(std::chrono::seconds(month_end(1) + 1)));
}

TEST_F(LocalPayments, PagesEscapeEveryValue) {
  EXPECT_EQ(local::html_escape(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  auto request = checkout_request("<script>alert(\"h1\")</script>");
  request.success_url = "http://app.test/paid?a=1&b=\"><script>x()</script>";
  const auto session = open_checkout(std::move(request));
  const auto page = call(Method::get, "/local-pay/checkout/" + session);
  EXPECT_THAT(page.body, HasSubstr("&lt;script&gt;alert(&quot;h1&quot;)&lt;/script&gt;"));
  EXPECT_THAT(page.body, Not(HasSubstr("<script>")));
  const auto paid = pay(session, kVisa);
  EXPECT_THAT(paid.body,
              HasSubstr("href=\"http://app.test/paid?a=1&amp;b=&quot;&gt;&lt;script&gt;"));
  EXPECT_THAT(paid.body, Not(HasSubstr("<script>")));
  // An id from the path is escaped on the error page too.
  const auto missing = call(Method::get, "/local-pay/checkout/%3Cb%3E");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("No such checkout session: &lt;b&gt;"));
  // Every page, an error's too, is kept from caches, Referers and frames.
  for (const Response* response : {&page, &paid, &missing}) {
    std::vector<std::string> headers;
    for (const auto& header : response->headers)
      headers.push_back(std::string(header.name) + ": " + header.value);
    EXPECT_THAT(headers,
                ::testing::IsSupersetOf({"Cache-Control: no-store", "Referrer-Policy: no-referrer",
                                         "X-Frame-Options: DENY"}));
  }
}

// A portal link works for an hour, as Stripe's are short-lived: its page and every form then
// answer 410, so a link left in a browser's history cannot pay, change the card or cancel. One
// saved before links were dated has expired. A week after it expired, opening another link
// forgets it, in the database too.
TEST_F(LocalPayments, APortalLinkExpiresAfterAnHour) {
  const auto subscription = subscribe();
  const auto portal = open_portal(subscription.customer);
  const std::string path = "/local-pay/portal/" + portal;
  advance(std::chrono::hours(1) - std::chrono::seconds(1));
  EXPECT_EQ(call(Method::get, path).status, 200);

  advance(std::chrono::seconds(1));
  for (const auto& response :
       {call(Method::get, path), call(Method::post, path + "/card", card_form(kVisa)),
        call(Method::post, path + "/pay", "invoice=in_x&" + card_form(kVisa)),
        call(Method::post, path + "/confirm", "invoice=in_x"),
        call(Method::post, path + "/cancel", "subscription=" + subscription.id)}) {
    EXPECT_EQ(response.status, 410);
    EXPECT_THAT(response.body,
                HasSubstr("This portal link has expired: open a new one from the service"));
  }
  EXPECT_FALSE(run_blocking(provider.get_subscription(subscription.id)).cancel_at_period_end);
  EXPECT_TRUE(delivered.empty());
  const auto fresh = open_portal(subscription.customer);
  EXPECT_EQ(call(Method::get, "/local-pay/portal/" + fresh).status, 200);

  sql("UPDATE local_provider_objects SET data = json_remove(data, '$.created') "
      "WHERE kind = 'portal_session'");
  const auto again = restarted();
  try {
    again->portal(fresh);
    ADD_FAILURE() << "an undated portal link was usable";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 410);
  }

  const auto status_of = [](LocalProvider& p, const std::string& id) {
    try {
      p.portal(id);
      return 200;
    } catch (const ApiError& e) {
      return e.status;
    }
  };
  advance(std::chrono::days(7));
  EXPECT_EQ(status_of(provider, portal), 410);  // a week on: forgotten at the next opening
  advance(std::chrono::seconds(1));
  const auto newest = open_portal(subscription.customer);
  EXPECT_EQ(status_of(provider, portal), 404);
  EXPECT_EQ(status_of(provider, newest), 200);
  const auto later = restarted();
  EXPECT_EQ(status_of(*later, portal), 404);
  EXPECT_EQ(status_of(*later, newest), 200);
}

TEST_F(LocalPayments, PortalListsInvoicesAndCancelsAtThePeriodsEnd) {
  const auto subscription = subscribe();
  const auto invoice = text(delivered[2].object, "id");
  const auto portal = open_portal(subscription.customer);
  const auto page = call(Method::get, "/local-pay/portal/" + portal);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr(invoice));
  EXPECT_THAT(page.body, HasSubstr("<td>$499.00</td><td>paid</td><td>2023-11-14</td>"));
  EXPECT_THAT(page.body, HasSubstr(subscription.id));
  EXPECT_THAT(page.body, HasSubstr("Visa ending 4242, expires 12/2030"));
  EXPECT_THAT(page.body, HasSubstr("href=\"http://app.test/billing\""));
  EXPECT_THAT(page.body, Not(HasSubstr("/pay\"")));  // nothing open to pay

  delivered.clear();
  const auto cancelled = call(Method::post, "/local-pay/portal/" + portal + "/cancel",
                              "subscription=" + subscription.id);
  EXPECT_EQ(cancelled.status, 200);
  EXPECT_THAT(cancelled.body, HasSubstr("It stays active until 2023-12-14, then ends."));
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  EXPECT_EQ(delivered[0].object.at("cancel_at_period_end"), json::value(true));
  EXPECT_EQ(delivered[0].event.at("data").at("previous_attributes"),
            json::parse(R"({"cancel_at_period_end":false})"));
  EXPECT_THAT(call(Method::get, "/local-pay/portal/" + portal).body, Not(HasSubstr("/cancel\"")));

  EXPECT_EQ(advance(std::chrono::days(29)).cancelled, 0);
  EXPECT_TRUE(delivered.empty());
  const auto report = advance(std::chrono::days(2));
  EXPECT_EQ(report.cancelled, 1);
  EXPECT_EQ(report.renewed, 0);
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.deleted"));
  EXPECT_EQ(text(delivered[0].object, "status"), "canceled");
  // A second later: the cancel, made in the checkout's second, moved the provider's clock on.
  EXPECT_EQ(integer(delivered[0].event, "created"), kStart + 31 * kDay + 1);
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).status, "canceled");
  EXPECT_EQ(advance(std::chrono::days(60)).cancelled, 0);  // once
  EXPECT_TRUE(delivered.empty());
}

TEST_F(LocalPayments, AdvancingRenewsWithTheCardOnFileAsOftenAsDue) {
  const auto subscription = subscribe();
  auto report = advance(std::chrono::days(30));
  EXPECT_EQ(report.now, TimePoint(std::chrono::seconds(month_end(1))));
  EXPECT_EQ(report.renewed, 1);
  EXPECT_EQ(report.failed, 0);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  const auto& invoice = delivered[0].object;
  EXPECT_EQ(text(invoice, "billing_reason"), "subscription_cycle");
  EXPECT_EQ(text(invoice, "status"), "paid");
  EXPECT_EQ(integer(invoice, "period_start"), month_end(1));
  EXPECT_EQ(integer(invoice, "period_end"), month_end(2));
  EXPECT_EQ(integer(invoice, "created"), month_end(1));
  EXPECT_EQ(integer(delivered[0].event, "created"), month_end(1));
  EXPECT_EQ(invoice.at("charge").at("balance_transaction"),
            json::parse(R"({"fee":1477,"net":48423})"));
  const auto& updated = delivered[1].object;
  EXPECT_EQ(text(updated, "status"), "active");
  EXPECT_EQ(integer(updated, "current_period_start"), month_end(1));
  EXPECT_EQ(integer(updated, "current_period_end"), month_end(2));
  EXPECT_EQ(delivered[1].event.at("data").at("previous_attributes"),
            json::value(json::object{{"current_period_start", kStart},
                                     {"current_period_end", month_end(1)}}));
  // The service's clock has not moved: the signatures (checked in receive) still carry its now.
  EXPECT_EQ(clock.now(), TimePoint(std::chrono::seconds(kStart)));
  EXPECT_EQ(provider.now(), TimePoint(std::chrono::seconds(month_end(1))));

  // Two periods over at once: two renewals, in order.
  report = advance(std::chrono::days(65));
  EXPECT_EQ(report.renewed, 2);
  ASSERT_EQ(delivered.size(), 4u);
  EXPECT_EQ(integer(delivered[0].object, "period_start"), month_end(2));
  EXPECT_EQ(integer(delivered[2].object, "period_start"), month_end(3));
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).current_period_end,
            month_end(4));
  EXPECT_EQ(run_blocking(provider.list_invoices(subscription.customer, {})).data.size(), 4u);
}

TEST_F(LocalPayments, AFailingCardLeavesTheSubscriptionPastDueUntilPaidInThePortal) {
  const auto subscription = subscribe(kFailsLater);  // its first payment goes through
  EXPECT_EQ(text(delivered[2].object, "status"), "paid");

  auto report = advance(std::chrono::days(30));
  EXPECT_EQ(report.renewed, 0);
  EXPECT_EQ(report.failed, 1);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_failed", "customer.subscription.updated"));
  const auto& invoice = delivered[0].object;
  const auto invoice_id = text(invoice, "id");
  EXPECT_EQ(text(invoice, "status"), "open");
  EXPECT_EQ(integer(invoice, "amount_due"), 49900);
  EXPECT_EQ(integer(invoice, "amount_paid"), 0);
  EXPECT_FALSE(invoice.at("charge").as_object().contains("balance_transaction"));
  EXPECT_EQ(invoice.at("charge").at("payment_method_details").at("card").at("last4"),
            json::value("0341"));
  EXPECT_EQ(invoice.at("status_transitions").at("paid_at"), json::value(nullptr));
  EXPECT_EQ(text(delivered[1].object, "status"), "past_due");
  EXPECT_EQ(delivered[1].event.at("data").at("previous_attributes").at("status"),
            json::value("active"));
  EXPECT_EQ(integer(invoice, "attempt_count"), 1);
  EXPECT_EQ(invoice.at("next_payment_attempt"), json::value(month_end(1) + 3 * kDay));

  // Tried again 3, 5 and 7 days after the failure, in vain; not invoiced again while past due:
  // the period moves on, unpaid and unserved.
  report = advance_to(month_end(2));
  EXPECT_EQ(report.renewed + report.failed + report.cancelled, 0);
  EXPECT_EQ(report.retried, 3);
  EXPECT_EQ(report.recovered, 0);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_failed", "invoice.payment_failed",
                          "invoice.payment_failed", "customer.subscription.updated"));
  EXPECT_EQ(integer(delivered[0].object, "next_payment_attempt"), month_end(1) + 5 * kDay);
  EXPECT_EQ(integer(delivered[1].object, "next_payment_attempt"), month_end(1) + 7 * kDay);
  EXPECT_EQ(integer(delivered[2].object, "attempt_count"), 4);
  EXPECT_TRUE(delivered[2].object.at("next_payment_attempt").is_null());
  EXPECT_EQ(text(delivered[3].object, "status"), "past_due");
  EXPECT_EQ(integer(delivered[3].object, "current_period_start"), month_end(2));
  EXPECT_EQ(integer(delivered[3].object, "current_period_end"), month_end(3));
  delivered.clear();

  const auto portal = open_portal(subscription.customer);
  const auto page = call(Method::get, "/local-pay/portal/" + portal);
  EXPECT_THAT(page.body, HasSubstr("<td>$499.00</td><td>open</td>"));
  EXPECT_THAT(page.body, HasSubstr("value=\"" + invoice_id + "\""));
  EXPECT_THAT(page.body, HasSubstr("action=\"/local-pay/portal/" + portal + "/pay\""));

  const auto pay_path = "/local-pay/portal/" + portal + "/pay";
  const auto again =
      call(Method::post, pay_path, "invoice=" + invoice_id + "&" + card_form(kFailsLater));
  EXPECT_EQ(again.status, 402);
  EXPECT_THAT(again.body, HasSubstr("Your card was declined"));
  EXPECT_TRUE(delivered.empty());

  const auto paid = call(Method::post, pay_path, "invoice=" + invoice_id + "&" + card_form(kVisa));
  EXPECT_EQ(paid.status, 200) << paid.body;
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  EXPECT_EQ(text(delivered[0].object, "id"), invoice_id);
  EXPECT_EQ(integer(delivered[0].object, "amount_paid"), 49900);
  // A second on from the period's move: two changes are never dated the same second.
  EXPECT_EQ(delivered[0].object.at("status_transitions").at("paid_at"),
            json::value(month_end(2) + 1));
  EXPECT_EQ(text(delivered[1].object, "status"), "active");
  EXPECT_EQ(delivered[1].event.at("data").at("previous_attributes"),
            json::parse(R"({"status":"past_due"})"));
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).status, "active");
  EXPECT_EQ(call(Method::post, pay_path, "invoice=" + invoice_id + "&" + card_form(kVisa)).status,
            409);

  // The card that paid is the card on file now. Paid late, the subscription is not charged for
  // the period that passed unpaid: its next renewal comes at the end of the period it is in
  // (2024-02-14), one period's charge, and goes through.
  EXPECT_EQ(advance_to(month_end(3) - 1).renewed, 0);
  report = advance_to(month_end(3));
  EXPECT_EQ(report.renewed, 1);
  EXPECT_EQ(report.failed, 0);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  EXPECT_EQ(integer(delivered[0].object, "amount_paid"), 49900);
  EXPECT_EQ(integer(delivered[0].object, "period_start"), month_end(3));
}

// An invoice paid in the portal with the card that asks the bank's confirmation, entered there:
// the confirm step first (nothing paid), then the payment, and the card is on file.
TEST_F(LocalPayments, APortalPaymentWithTheAuthenticationCardIsConfirmedFirst) {
  const auto subscription = subscribe(kFailsLater);
  EXPECT_EQ(advance(std::chrono::days(30)).failed, 1);
  const auto invoice_id = text(delivered[0].object, "id");
  delivered.clear();
  const auto portal = open_portal(subscription.customer);
  const auto path = "/local-pay/portal/" + portal;
  const auto confirm = [&] {
    return call(Method::post, path + "/confirm", "invoice=" + invoice_id);
  };
  EXPECT_EQ(confirm().status, 409);  // nothing to confirm

  const auto asked =
      call(Method::post, path + "/pay", "invoice=" + invoice_id + "&" + card_form(kAuthenticate));
  EXPECT_EQ(asked.status, 200) << asked.body;
  EXPECT_THAT(asked.body, HasSubstr("Authentication required"));
  EXPECT_THAT(asked.body, HasSubstr("confirm this payment of $499.00 with the card ending 3220"));
  EXPECT_THAT(asked.body, HasSubstr("action=\"" + path + "/confirm\""));
  EXPECT_THAT(asked.body, HasSubstr("name=\"invoice\" value=\"" + invoice_id + "\""));
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).status, "past_due");
  // A page of another payment (a tab left open) confirms nothing.
  EXPECT_EQ(call(Method::post, path + "/confirm", "invoice=in_other").status, 409);
  EXPECT_TRUE(delivered.empty());

  const auto confirmed = confirm();
  EXPECT_EQ(confirmed.status, 200) << confirmed.body;
  EXPECT_THAT(confirmed.body, HasSubstr("Payment succeeded"));
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  EXPECT_EQ(text(delivered[0].object, "id"), invoice_id);
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).status, "active");
  EXPECT_EQ(confirm().status, 409);
  // Authenticated once, the card on file pays the renewals without asking again.
  EXPECT_EQ(advance_to(month_end(2)).renewed, 1);
}

// A card on file that runs out is refused at the next renewal, as Stripe's expired_card.
TEST_F(LocalPayments, ACardThatHasRunOutFailsItsRenewal) {
  // 2023-11-14: good through the end of December 2023.
  const auto paid = pay(open_checkout(checkout_request()), kVisa, "12%2F23");
  ASSERT_EQ(paid.status, 200) << paid.body;
  EXPECT_EQ(advance(std::chrono::days(30)).renewed, 1);  // 2023-12-14
  const auto report = advance_to(month_end(2));          // 2024-01-14
  EXPECT_EQ(report.failed, 1);
  EXPECT_THAT(delivered_types(),
              ElementsAre("invoice.payment_failed", "customer.subscription.updated"));
  const auto late = pay(open_checkout(checkout_request("h2")), kVisa, "12%2F23");
  EXPECT_EQ(late.status, 402);
  EXPECT_THAT(late.body, HasSubstr("Your card has expired"));
}

TEST_F(LocalPayments, TheCardSavedInThePortalPaysTheRenewals) {
  const auto subscription = subscribe();
  const auto portal = open_portal(subscription.customer);
  const auto card_path = "/local-pay/portal/" + portal + "/card";
  const auto refused = call(Method::post, card_path, card_form(kDeclined));
  EXPECT_EQ(refused.status, 402);
  EXPECT_THAT(refused.body, HasSubstr("href=\"/local-pay/portal/" + portal + "\""));
  const auto saved = call(Method::post, card_path, card_form(kFailsLater, "01%2F2031"));
  EXPECT_EQ(saved.status, 200);
  EXPECT_THAT(saved.body, HasSubstr("the card ending 0341"));
  EXPECT_THAT(call(Method::get, "/local-pay/portal/" + portal).body,
              HasSubstr("Visa ending 0341, expires 01/2031"));
  delivered.clear();
  EXPECT_EQ(advance(std::chrono::days(30)).failed, 1);
}

TEST_F(LocalPayments, PortalRefusesAnotherCustomersObjects) {
  const auto mine = subscribe(checkout_request("h1"));
  const auto theirs = subscribe(checkout_request("h2"));
  const auto their_invoice = text(delivered.back().object, "id");
  const auto portal = open_portal(mine.customer);
  EXPECT_EQ(
      call(Method::post, "/local-pay/portal/" + portal + "/cancel", "subscription=" + theirs.id)
          .status,
      404);
  EXPECT_EQ(call(Method::post, "/local-pay/portal/" + portal + "/pay",
                 "invoice=" + their_invoice + "&" + card_form(kVisa))
                .status,
            404);
  EXPECT_FALSE(run_blocking(provider.get_subscription(theirs.id)).cancel_at_period_end);
  EXPECT_THAT(call(Method::get, "/local-pay/portal/" + portal).body, Not(HasSubstr(their_invoice)));
}

TEST_F(LocalPayments, ChangePriceDeliversUpdatedWithThePreviousItemsAndMetadata) {
  const auto subscription = subscribe();
  delivered.clear();
  const auto changed = run_blocking(provider.change_price(
      subscription.id, "price_local_hospital_pro_yearly", PlanType::pro, BillingCycle::yearly));
  EXPECT_EQ(changed.price_id, "price_local_hospital_pro_yearly");
  EXPECT_EQ(changed.item_id, subscription.item_id);
  EXPECT_EQ(
      changed.metadata,
      (Metadata{
          {"role", "hospital"}, {"role_entity_id", "h1"}, {"plan", "pro"}, {"cycle", "yearly"}}));
  ASSERT_THAT(delivered_types(),
              ElementsAre("customer.subscription.updated", "invoice.payment_succeeded"));
  const auto& object = delivered[0].object;
  EXPECT_EQ(object.at("items").at("data").at(0).at("price").at("id"),
            json::value("price_local_hospital_pro_yearly"));
  EXPECT_EQ(object.at("metadata").at("plan"), json::value("pro"));
  const auto& previous = delivered[0].event.at("data").at("previous_attributes");
  EXPECT_EQ(previous.at("items").at("data").at(0).at("price").at("id"),
            json::value("price_local_hospital_lite_monthly"));
  EXPECT_EQ(previous.at("metadata").at("plan"), json::value("lite"));
  EXPECT_EQ(previous.at("metadata").at("cycle"), json::value("monthly"));

  // A new interval starts a period now, as Stripe's does: the year is invoiced at once, less
  // the month unused at the old price.
  EXPECT_EQ(previous.at("current_period_end"), json::value(month_end(1)));
  // (A second on: the checkout's events had this second.)
  EXPECT_EQ(changed.current_period_start, kStart + 1);
  EXPECT_EQ(changed.current_period_end, kStart + 1 + 366 * kDay);
  EXPECT_EQ(changed.status, "active");
  const auto& invoice = delivered[1].object;
  EXPECT_EQ(text(invoice, "billing_reason"), "subscription_update");
  EXPECT_EQ(integer(invoice, "amount_paid"), 959040 - 49900);
  EXPECT_EQ(integer(invoice, "period_end"), kStart + 1 + 366 * kDay);
  const auto& lines = invoice.at("lines").at("data").as_array();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("price").at("id"), json::value("price_local_hospital_pro_yearly"));
  EXPECT_EQ(lines[0].at("amount").as_int64(), 959040);
  EXPECT_FALSE(lines[0].at("proration").as_bool());
  EXPECT_EQ(lines[1].at("price").at("id"), json::value("price_local_hospital_lite_monthly"));
  EXPECT_EQ(lines[1].at("amount").as_int64(), -49900);
  EXPECT_TRUE(lines[1].at("proration").as_bool());
  // Nothing more until the year is over.
  advance(std::chrono::days(365));
  EXPECT_TRUE(delivered.empty());
  advance(std::chrono::days(1));
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 959040);

  EXPECT_THROW(run_blocking(provider.change_price(subscription.id, "price_unknown", PlanType::pro,
                                                  BillingCycle::yearly)),
               ApiError);
}

// A change of price the card on file would fail to pay is refused, and changes nothing (as
// Stripe's payment_behavior error_if_incomplete): a plan paid for is not left past_due, and a
// dearer one is not had unpaid.
TEST_F(LocalPayments, AChangeOfPriceTheCardWouldFailIsRefused) {
  const auto subscription = subscribe(kFailsLater);  // lite monthly
  advance(std::chrono::days(10));
  for (const auto& [price, type, cycle] :
       {std::tuple{"price_local_hospital_lite_yearly", PlanType::lite, BillingCycle::yearly},
        std::tuple{"price_local_hospital_pro_monthly", PlanType::pro, BillingCycle::monthly}}) {
    SCOPED_TRACE(price);
    try {
      run_blocking(provider.change_price(subscription.id, price, type, cycle));
      ADD_FAILURE() << "changed";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 402);
    }
    EXPECT_TRUE(delivered.empty());
    const auto unchanged = run_blocking(provider.get_subscription(subscription.id));
    EXPECT_EQ(unchanged.price_id, subscription.price_id);
    EXPECT_EQ(unchanged.status, "active");
    EXPECT_EQ(unchanged.current_period_start, subscription.current_period_start);
    EXPECT_EQ(unchanged.current_period_end, subscription.current_period_end);
  }
}

// While an invoice is unpaid no price changes (the plan is suspended then, and select answers
// 409 first): the same 409 when the provider is asked anyway, nothing charged or changed.
TEST_F(LocalPayments, APastDueSubscriptionChangesNoPrice) {
  const auto subscription = subscribe(kFailsLater);
  EXPECT_EQ(advance(std::chrono::days(31)).failed, 1);
  delivered.clear();
  try {
    run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                       PlanType::pro, BillingCycle::monthly));
    ADD_FAILURE() << "changed";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 409);
    EXPECT_THAT(std::string(e.detail.as_string()), HasSubstr("unpaid invoice"));
  }
  EXPECT_TRUE(delivered.empty());
  const auto unchanged = run_blocking(provider.get_subscription(subscription.id));
  EXPECT_EQ(unchanged.price_id, subscription.price_id);
  EXPECT_EQ(unchanged.status, "past_due");
}

// Back from yearly to monthly: the unused rest of the year is more than a month, so the change's
// invoice charges nothing and the credit left is the customer's, taken by the invoices after it.
TEST_F(LocalPayments, BackToMonthlyTheUnusedYearIsCreditedToTheCustomer) {
  const auto subscription = subscribe(checkout_request("h1", BillingCycle::yearly));
  advance(std::chrono::days(100));
  const auto monthly = run_blocking(provider.change_price(
      subscription.id, "price_local_hospital_lite_monthly", PlanType::lite, BillingCycle::monthly));
  const std::int64_t year = subscription.current_period_end - subscription.current_period_start;
  const std::int64_t left = subscription.current_period_end - monthly.current_period_start;
  const Cents credit = (479040 * left + year / 2) / year;
  const auto& changed = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(changed, "amount_paid"), 0);
  EXPECT_EQ(integer(changed, "ending_balance"), 49900 - credit);
  advance_to(monthly.current_period_end);
  const auto& renewal = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(renewal, "starting_balance"), 49900 - credit);
  EXPECT_EQ(integer(renewal, "amount_paid"), 0);
  EXPECT_EQ(integer(renewal, "ending_balance"), 2 * 49900 - credit);
  // The customer sees it: in the invoices listed, and on the portal's page.
  const auto listed =
      run_blocking(provider.list_invoices(subscription.customer, PageRequest{.limit = 1}));
  ASSERT_EQ(listed.data.size(), 1u);
  EXPECT_EQ(listed.data[0].total, 49900);
  EXPECT_EQ(listed.data[0].starting_balance, 49900 - credit);
  EXPECT_EQ(listed.data[0].ending_balance, 2 * 49900 - credit);
  const auto page = call(Method::get, "/local-pay/portal/" + open_portal(subscription.customer));
  EXPECT_THAT(page.body, HasSubstr("Credit on your account: " + local::dollars(credit - 2 * 49900) +
                                   ", taken off your next invoices."));
  // The change's own invoice: its total a credit, nothing due.
  EXPECT_THAT(page.body,
              HasSubstr("<td>" + local::dollars(49900 - credit) + "</td><td>$0.00</td>"));
}

// A price changed mid-period is prorated and invoiced at once, as Stripe's always_invoice does:
// the rest of the period at the new price as a charge, at the old one as a credit, so that a
// dearer plan is paid for before it is had. A credit larger than an invoice (a cheaper plan)
// leaves it at zero, paid with no charge, and goes on to the next.
TEST_F(LocalPayments, APriceChangedMidPeriodIsProratedAndInvoicedAtOnce) {
  const auto subscription = subscribe();  // lite monthly, 49,900 a month
  advance(std::chrono::days(15));         // half the period left
  delivered.clear();
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                     PlanType::pro, BillingCycle::monthly));
  EXPECT_THAT(delivered_types(),
              ElementsAre("customer.subscription.updated", "invoice.payment_succeeded"));
  auto invoice = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(text(invoice, "billing_reason"), "subscription_update");
  // +49,950 for pro's half, -24,950 for lite's unused half.
  EXPECT_EQ(integer(invoice, "amount_paid"), 49950 - 24950);
  auto lines = invoice.at("lines").at("data").as_array();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("price").at("id"), json::value("price_local_hospital_pro_monthly"));
  EXPECT_EQ(lines[0].at("amount").as_int64(), 49950);
  EXPECT_TRUE(lines[0].at("proration").as_bool());
  EXPECT_EQ(lines[1].at("amount").as_int64(), -24950);
  EXPECT_EQ(lines[1].at("price").at("id"), json::value("price_local_hospital_lite_monthly"));
  EXPECT_EQ(integer(invoice.at("charge").as_object(), "amount"), 25000);
  // The renewal bills the new period alone.
  delivered.clear();
  advance(std::chrono::days(15));
  invoice = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(invoice, "amount_paid"), 99900);
  EXPECT_EQ(invoice.at("lines").at("data").as_array().size(), 1u);

  // Back to lite as the period starts: a whole period's credit, more than that invoice, which
  // is paid with no charge.
  delivered.clear();
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_lite_monthly",
                                     PlanType::lite, BillingCycle::monthly));
  invoice = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(invoice, "amount_due"), 0);  // 49,900 - 99,900 = -50,000
  EXPECT_EQ(integer(invoice, "amount_paid"), 0);
  EXPECT_EQ(integer(invoice, "ending_balance"), -50000);
  EXPECT_TRUE(invoice.at("charge").is_null());
  EXPECT_TRUE(invoice.at("payment_intent").is_null());
  EXPECT_EQ(text(invoice, "status"), "paid");
  // The next renewal takes it: 49,900 - 50,000 leaves 100, which comes off the one after, after
  // a restart too.
  delivered.clear();
  advance_to(month_end(2));
  invoice = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(invoice, "amount_paid"), 0);
  EXPECT_EQ(integer(invoice, "ending_balance"), -100);
  const auto again = restarted();
  delivered.clear();
  run_blocking(again->advance(std::chrono::days(31)));  // to 2024-02-14
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49800);
}

TEST_F(LocalPayments, ListsPageNewestFirstWithACursor) {
  std::vector<std::string> customers, subscriptions;  // oldest first
  for (int i = 0; i < 6; ++i) {
    const auto s = subscribe(checkout_request("h" + std::to_string(i)));
    customers.push_back(s.customer);
    subscriptions.push_back(s.id);
  }
  const auto ids = [](const auto& page) {
    std::vector<std::string> out;
    for (const auto& item : page.data) out.push_back(item.id);
    return out;
  };
  auto page = run_blocking(provider.list_customers({.limit = 4}));
  EXPECT_THAT(ids(page), ElementsAre(customers[5], customers[4], customers[3], customers[2]));
  EXPECT_TRUE(page.has_more);
  page = run_blocking(provider.list_customers({.limit = 4, .starting_after = customers[2]}));
  EXPECT_THAT(ids(page), ElementsAre(customers[1], customers[0]));
  EXPECT_FALSE(page.has_more);
  page = run_blocking(provider.list_customers({.limit = 2, .starting_after = customers[2]}));
  EXPECT_THAT(ids(page), ElementsAre(customers[1], customers[0]));
  EXPECT_FALSE(page.has_more);  // exactly the last two: nothing after them
  EXPECT_EQ(run_blocking(provider.list_customers({})).data.size(), 6u);  // limit 10
  EXPECT_EQ(run_blocking(provider.list_customers({})).data[0].metadata,
            (Metadata{{"role", "hospital"}, {"role_entity_id", "h5"}}));

  const auto subs = run_blocking(provider.list_subscriptions({.limit = 1}));
  EXPECT_THAT(ids(subs), ElementsAre(subscriptions[5]));
  EXPECT_TRUE(subs.has_more);
  EXPECT_THAT(ids(run_blocking(
                  provider.list_subscriptions({.limit = 100, .starting_after = subs.data[0].id}))),
              ElementsAre(subscriptions[4], subscriptions[3], subscriptions[2], subscriptions[1],
                          subscriptions[0]));

  // A customer's invoices, newest first.
  advance(std::chrono::days(30));
  const auto invoices = run_blocking(provider.list_invoices(customers[0], {.limit = 1}));
  ASSERT_EQ(invoices.data.size(), 1u);
  EXPECT_TRUE(invoices.has_more);
  // Five seconds later: each checkout after the first, made in the same second of the service's
  // clock, moved the provider's on by one.
  EXPECT_EQ(invoices.data[0].created, month_end(1) + 5);
  const auto older = run_blocking(
      provider.list_invoices(customers[0], {.limit = 1, .starting_after = invoices.data[0].id}));
  ASSERT_EQ(older.data.size(), 1u);
  EXPECT_EQ(older.data[0].created, kStart);
  EXPECT_EQ(older.data[0].amount_paid, 49900);
  EXPECT_EQ(older.data[0].subscription, subscriptions[0]);
  EXPECT_FALSE(older.has_more);

  // A cursor must name an object of the list; the limit is Stripe's 1-100.
  const auto status_of = [](auto&& work) {
    try {
      run_blocking(std::move(work));
    } catch (const ApiError& e) {
      return e.status;
    }
    return 200;
  };
  EXPECT_EQ(status_of(provider.list_customers({.starting_after = "cus_nope"})), 404);
  EXPECT_EQ(status_of(provider.list_invoices(customers[0],
                                             {.starting_after = invoices.data[0].id + "x"})),
            404);
  EXPECT_EQ(status_of(provider.list_invoices(
                customers[1], {.starting_after = invoices.data[0].id})),  // customers[0]'s
            404);
  EXPECT_EQ(status_of(provider.list_customers({.limit = 0})), 502);
  EXPECT_EQ(status_of(provider.list_customers({.limit = 101})), 502);
}

TEST_F(LocalPayments, UnknownIdsAreNotFoundInStripesWords) {
  const auto detail = [](auto&& work) {
    try {
      run_blocking(std::move(work));
    } catch (const ApiError& e) {
      return std::to_string(e.status) + " " + std::string(e.detail.as_string());
    }
    return std::string("no error");
  };
  EXPECT_EQ(detail(provider.get_subscription("sub_x")), "404 No such subscription: sub_x");
  EXPECT_EQ(detail(provider.cancel_at_period_end("sub_x")), "404 No such subscription: sub_x");
  EXPECT_EQ(detail(provider.change_price("sub_x", "price_local_hospital_pro_monthly", PlanType::pro,
                                         BillingCycle::monthly)),
            "404 No such subscription: sub_x");
  EXPECT_EQ(detail(provider.list_invoices("cus_x", {})), "404 No such customer: cus_x");
  EXPECT_EQ(detail(provider.create_portal_session("cus_x", "")), "404 No such customer: cus_x");
  EXPECT_NO_THROW(run_blocking(provider.check_health()));
  EXPECT_TRUE(delivered.empty());
}

TEST_F(LocalPayments, CheckoutRefusesAPriceThatIsNotTheRequestedPlan) {
  auto request = checkout_request();
  request.price_id = "price_local_hospital_pro_monthly";  // the request says lite
  EXPECT_THROW(run_blocking(provider.create_checkout_session(request)), ApiError);
  request.price_id = "price_made_up";
  try {
    run_blocking(provider.create_checkout_session(request));
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 502);
  }
}

TEST_F(LocalPayments, ACustomerIsReusedAndOneFromAnEarlierRunIsTakenOver) {
  const auto first = subscribe();
  run_blocking(provider.cancel_at_period_end(first.id));
  advance(std::chrono::days(30));
  auto again = checkout_request();
  again.customer_id = first.customer;
  EXPECT_EQ(subscribe(again).customer, first.customer);
  EXPECT_EQ(text(delivered[0].object, "customer"), first.customer);

  auto earlier = checkout_request("h9");
  earlier.customer_id = "cus_from_before_the_restart";
  EXPECT_EQ(subscribe(earlier).customer, "cus_from_before_the_restart");
  EXPECT_EQ(run_blocking(provider.list_customers({})).data.size(), 2u);
}

TEST_F(LocalPayments, CancellingTwiceDeliversOnceAndACanceledSubscriptionIsFinal) {
  const auto subscription = subscribe();
  delivered.clear();
  EXPECT_TRUE(run_blocking(provider.cancel_at_period_end(subscription.id)).cancel_at_period_end);
  EXPECT_TRUE(run_blocking(provider.cancel_at_period_end(subscription.id)).cancel_at_period_end);
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  advance(std::chrono::days(30));
  EXPECT_THROW(run_blocking(provider.cancel_at_period_end(subscription.id)), ApiError);
  EXPECT_THROW(
      run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                         PlanType::pro, BillingCycle::monthly)),
      ApiError);
}

// A price changed before a subscription's end is invoiced then: nothing is owed at the end, and
// a credit it leaves goes to the customer's next invoice, here a new subscription's first.
TEST_F(LocalPayments, NothingIsOwedAtTheEndAndACreditIsKept) {
  const auto subscription = subscribe();  // lite monthly
  advance(std::chrono::days(15));
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                     PlanType::pro, BillingCycle::monthly));
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49950 - 24950);
  run_blocking(provider.cancel_at_period_end(subscription.id));
  delivered.clear();
  advance(std::chrono::days(16));
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.deleted"));

  // Pro, back to lite at once (a credit of 50,000, on an invoice paid with no charge),
  // cancelled: the customer's next subscription's first invoice takes it (49,900: nothing to
  // charge, 100 left for later).
  const auto second = subscribe(checkout_request("h1", BillingCycle::monthly, PlanType::pro));
  delivered.clear();
  run_blocking(provider.change_price(second.id, "price_local_hospital_lite_monthly", PlanType::lite,
                                     BillingCycle::monthly));
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 0);
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "ending_balance"), -50000);
  run_blocking(provider.cancel_at_period_end(second.id));
  delivered.clear();
  advance(std::chrono::days(31));  // a calendar month from its start
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.deleted"));
  delivered.clear();
  const auto third_session = open_checkout(checkout_request());
  // The page, and the bank's question, name what is due now, not the list price.
  const auto page = call(Method::get, "/local-pay/checkout/" + third_session);
  EXPECT_THAT(page.body, HasSubstr("$499.00 per month"));
  EXPECT_THAT(page.body, HasSubstr("Due now: $0.00, the balance of your account taken in."));
  EXPECT_THAT(page.body, HasSubstr("Pay $0.00"));
  EXPECT_THAT(pay(third_session, kAuthenticate).body,
              HasSubstr("confirm this payment of $0.00 with the card ending 3220"));
  const auto third_paid = call(Method::post, "/local-pay/checkout/" + third_session + "/confirm");
  EXPECT_THAT(third_paid.body, HasSubstr("$0.00 paid: $499.00 less the credit on your account"));
  const auto third =
      run_blocking(provider.get_subscription(text(delivered.back().object, "subscription")));
  EXPECT_EQ(third.customer, subscription.customer);
  ASSERT_EQ(delivered.back().type, "invoice.payment_succeeded");
  EXPECT_EQ(integer(delivered.back().object, "amount_paid"), 0);
  advance(std::chrono::days(31));  // a calendar month from its start
  EXPECT_EQ(integer(delivered[0].object, "amount_paid"), 49800);
}

// A renewal that prorations bring below Stripe's smallest charge (50 cents) is not charged: it
// is paid with nothing taken (no fee, so no negative net) and the amount goes to the next one.
TEST_F(LocalPayments, LessThanTheSmallestChargeIsCarriedToTheNextInvoice) {
  const auto subscription = subscribe(checkout_request("h1", BillingCycle::monthly, PlanType::pro));
  // Pro to lite a moment into the period: the rest at lite less the rest at pro nearly cancels
  // the next period's lite price. The lines are rounded as the ledger rounds them.
  const std::int64_t period = subscription.current_period_end - subscription.current_period_start;
  const std::int64_t elapsed = period / 400;
  const std::int64_t left = period - elapsed;
  const auto rest = [&](Cents price) { return (price * left + period / 2) / period; };
  const Cents owed = 49900 + rest(49900) - rest(99900);
  ASSERT_GT(owed, 0);
  ASSERT_LT(owed, 50);
  advance(std::chrono::seconds(elapsed));
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_lite_monthly",
                                     PlanType::lite, BillingCycle::monthly));
  advance_to(subscription.current_period_end);
  const auto& carried = last_delivered("invoice.payment_succeeded");
  EXPECT_EQ(integer(carried, "amount_paid"), 0);
  EXPECT_TRUE(carried.at("charge").is_null());
  const auto next = run_blocking(provider.get_subscription(subscription.id));
  advance_to(next.current_period_end);
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49900 + owed);
}

// A balance carried from an invoice is the customer's, not prorations the subscription owes: its
// end makes no invoice of it, and the customer's next subscription takes it.
TEST_F(LocalPayments, ABalanceAloneMakesNoFinalInvoice) {
  const auto subscription = subscribe(checkout_request("h1", BillingCycle::monthly, PlanType::pro));
  // Pro to lite at once: a credit of the whole pro month, less the lite month, on the renewal,
  // which leaves 100 cents over.
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_lite_monthly",
                                     PlanType::lite, BillingCycle::monthly));
  advance_to(subscription.current_period_end);
  ASSERT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 0);
  run_blocking(provider.cancel_at_period_end(subscription.id));
  advance_to(run_blocking(provider.get_subscription(subscription.id)).current_period_end);
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.deleted"));
  subscribe();  // lite monthly, 49,900 less the 100 left
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49800);
}

// Checkout sessions do not pile up, each saved and compared on every change: past five open for
// an entity, the same checkout asked for again is the newest such one (another entity's are its
// own), and one never paid is dropped a week after it expired.
TEST_F(LocalPayments, CheckoutSessionsDoNotPileUp) {
  std::set<std::string> opened;
  std::string newest;
  for (int i = 0; i < 5; ++i) opened.insert(newest = open_checkout(checkout_request("h1")));
  EXPECT_EQ(opened.size(), 5u);
  EXPECT_EQ(open_checkout(checkout_request("h1")), newest);
  EXPECT_EQ(open_checkout(checkout_request("h1")), newest);
  const auto yearly = open_checkout(checkout_request("h1", BillingCycle::yearly));
  EXPECT_NE(yearly, newest);  // another price
  EXPECT_EQ(open_checkout(checkout_request("h1", BillingCycle::yearly)), yearly);
  EXPECT_NE(open_checkout(checkout_request("h2")), newest);

  advance(std::chrono::days(2));  // expired
  EXPECT_EQ(call(Method::get, "/local-pay/checkout/" + newest).status, 410);
  advance(std::chrono::days(7));
  open_checkout(checkout_request("h3"));  // drops those expired a week ago
  EXPECT_EQ(call(Method::get, "/local-pay/checkout/" + newest).status, 404);
}

// The bank confirms the amount it was asked about: when another checkout of the account took the
// credit meanwhile, confirming charges nothing but says so, and paying again names the new amount.
TEST_F(LocalPayments, AConfirmationChargesOnlyTheAmountItNamed) {
  const auto ended = subscribe(checkout_request("h1", BillingCycle::monthly, PlanType::pro));
  run_blocking(provider.change_price(ended.id, "price_local_hospital_lite_monthly", PlanType::lite,
                                     BillingCycle::monthly));
  run_blocking(provider.cancel_at_period_end(ended.id));
  advance(std::chrono::days(31));  // ended: a credit of 50,000 for the customer's next invoice
  const auto first_tab = open_checkout(checkout_request());
  const auto second_tab = open_checkout(checkout_request());
  EXPECT_THAT(pay(second_tab, kAuthenticate).body,
              HasSubstr("confirm this payment of $0.00 with the card ending 3220"));
  EXPECT_THAT(pay(first_tab, kVisa).body, HasSubstr("$0.00 paid"));  // the credit, 100 left
  delivered.clear();
  const auto confirmed = call(Method::post, "/local-pay/checkout/" + second_tab + "/confirm");
  EXPECT_EQ(confirmed.status, 409);
  EXPECT_THAT(confirmed.body, HasSubstr("The amount due has changed since you confirmed it"));
  EXPECT_THAT(confirmed.body, HasSubstr("/local-pay/checkout/" + second_tab));  // try again
  EXPECT_TRUE(delivered.empty());                                               // nothing charged
  // The 100 the first left is the customer's: the second's invoice takes it.
  EXPECT_THAT(pay(second_tab, kAuthenticate).body,
              HasSubstr("confirm this payment of $498.00 with the card ending 3220"));
  EXPECT_THAT(call(Method::post, "/local-pay/checkout/" + second_tab + "/confirm").body,
              HasSubstr("$498.00 paid"));
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49800);
}

// A debit an ended subscription carried (a price change's invoice below the smallest charge) is
// added to the customer's next checkout, on its page and in its charge.
TEST_F(LocalPayments, ADebitCarriedFromAnEndedSubscriptionIsAddedToTheNextCheckout) {
  const auto subscription = subscribe();  // lite monthly
  const std::int64_t period = subscription.current_period_end - subscription.current_period_start;
  const std::int64_t left = 1800;  // to lite's end: the change to pro is prorated for it
  const auto rest = [&](Cents price) { return (price * left + period / 2) / period; };
  const Cents owed = rest(99900) - rest(49900);
  ASSERT_GT(owed, 0);
  ASSERT_LT(owed, 50);
  advance_to(subscription.current_period_end - left);
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                     PlanType::pro, BillingCycle::monthly));
  ASSERT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 0);  // carried
  run_blocking(provider.cancel_at_period_end(subscription.id));
  advance_to(subscription.current_period_end);
  const auto session = open_checkout(checkout_request());
  EXPECT_THAT(call(Method::get, "/local-pay/checkout/" + session).body,
              HasSubstr("Due now: " + local::dollars(49900 + owed)));
  EXPECT_THAT(pay(session, kVisa).body, HasSubstr(local::dollars(49900 + owed) +
                                                  " paid: $499.00 and what your account owed"));
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49900 + owed);
}

// A past-due subscription that ends (cancelled at its period's end) voids the invoice it left
// unpaid: that period was spent suspended, and paying it now would buy nothing.
TEST_F(LocalPayments, AnEndedSubscriptionsUnpaidInvoiceIsVoided) {
  const auto subscription = subscribe(kFailsLater);
  EXPECT_EQ(advance(std::chrono::days(31)).failed, 1);
  const auto unpaid = text(delivered[0].object, "id");
  run_blocking(provider.cancel_at_period_end(subscription.id));
  advance(std::chrono::days(31));  // three retries in vain, then the end
  EXPECT_THAT(delivered_types(), ElementsAre("invoice.payment_failed", "invoice.payment_failed",
                                             "invoice.payment_failed", "invoice.voided",
                                             "customer.subscription.deleted"));
  EXPECT_EQ(text(delivered[3].object, "id"), unpaid);
  EXPECT_EQ(text(delivered[3].object, "status"), "void");
  EXPECT_TRUE(delivered[3].object.at("next_payment_attempt").is_null());
  const auto portal = open_portal(subscription.customer);
  const auto page = call(Method::get, "/local-pay/portal/" + portal);
  EXPECT_THAT(page.body, Not(HasSubstr("value=\"" + unpaid + "\"")));  // no Pay form for it
  const auto paid = call(Method::post, "/local-pay/portal/" + portal + "/pay",
                         "invoice=" + unpaid + "&" + card_form(kVisa));
  EXPECT_EQ(paid.status, 409);
  EXPECT_THAT(paid.body, HasSubstr("This invoice was voided: its subscription has ended"));
}

// A ledger stored before price changes were invoiced at once may still owe prorations: the
// subscription's end collects them, in a last invoice sent after the deletion.
TEST_F(LocalPayments, ProrationsAnOlderLedgerOwesAreCollectedAtTheEnd) {
  const auto subscription = subscribe();  // lite monthly
  // The two lines an older version left pending for a change to pro at the half.
  run_blocking(db->transact([&](Tx& tx) {
    for (const auto& [id, price, amount] :
         {std::tuple{"ii_older_1", "price_local_hospital_pro_monthly", 49950},
          std::tuple{"ii_older_2", "price_local_hospital_lite_monthly", -24950}})
      tx.get<LocalProviderRepo>().save_local_object(
          "test",
          {.kind = std::string(local::kind::invoice_item),
           .id = id,
           .version = 1,
           .data = json::serialize(json::object{{"id", id},
                                                {"subscription", subscription.id},
                                                {"price_id", price},
                                                {"amount", amount},
                                                {"period_start", subscription.current_period_start},
                                                {"period_end", subscription.current_period_end},
                                                {"invoice", nullptr}})});
  }));
  const auto again = restarted();
  run_blocking(again->cancel_at_period_end(subscription.id));
  delivered.clear();
  run_blocking(again->advance(std::chrono::days(31)));
  ASSERT_THAT(delivered_types(),
              ElementsAre("customer.subscription.deleted", "invoice.payment_succeeded"));
  const auto& last = delivered[1].object;
  EXPECT_EQ(integer(last, "amount_paid"), 49950 - 24950);
  EXPECT_EQ(text(last, "billing_reason"), "subscription_update");
  EXPECT_EQ(last.at("lines").at("data").as_array().size(), 2u);
}

// A voided invoice still says what it billed, listed with its total.
TEST_F(LocalPayments, AVoidedInvoiceIsListedWithWhatItBilled) {
  const auto subscription = subscribe(kFailsLater);  // lite monthly, 49,900
  advance(std::chrono::days(30));
  ASSERT_EQ(delivered[0].type, "invoice.payment_failed");
  EXPECT_EQ(integer(delivered[0].object, "amount_due"), 49900);
  const auto unpaid = text(delivered[0].object, "id");
  EXPECT_EQ(advance(std::chrono::days(8)).retried, 3);  // in vain: the retries are over
  run_blocking(provider.cancel_at_period_end(subscription.id));
  delivered.clear();
  advance_to(month_end(2));
  ASSERT_THAT(delivered_types(), ElementsAre("invoice.voided", "customer.subscription.deleted"));
  EXPECT_EQ(text(delivered[0].object, "id"), unpaid);
  const auto listed =
      run_blocking(provider.list_invoices(subscription.customer, PageRequest{.limit = 10}));
  const auto voided = std::find_if(listed.data.begin(), listed.data.end(),
                                   [&](const Invoice& i) { return i.id == unpaid; });
  ASSERT_NE(voided, listed.data.end());
  EXPECT_EQ(voided->status, "void");
  EXPECT_EQ(voided->total, 49900);
  EXPECT_EQ(voided->starting_balance, 0);
  EXPECT_EQ(voided->ending_balance, 0);
}

// Everything the provider made is kept in the database: a provider started on it again (a
// restart) shows, pays and renews what the first one made, on the first one's clock.
TEST_F(LocalPayments, ARestartKeepsItsObjectsAndItsClock) {
  const auto subscription = subscribe(kFailsLater);
  EXPECT_EQ(advance(std::chrono::days(31)).failed, 1);  // past_due, its invoice open
  const auto portal = open_portal(subscription.customer);
  const auto unpaid_session = open_checkout(checkout_request("h2"));
  const auto before = listed(provider, subscription.customer);
  ASSERT_EQ(before.size(), 4u);  // the subscription, two invoices, the customer

  delivered.clear();
  auto again = restarted();
  EXPECT_TRUE(delivered.empty());  // nothing was left undelivered
  EXPECT_EQ(again->now(), provider.now());
  EXPECT_EQ(listed(*again, subscription.customer), before);
  EXPECT_EQ(again->payable_checkout(unpaid_session).session.amount,
            provider.payable_checkout(unpaid_session).session.amount);
  const auto view = again->portal(portal);
  EXPECT_EQ(view.card.last4, "0341");
  ASSERT_EQ(view.invoices.size(), 2u);
  EXPECT_EQ(view.invoices[0].status, "open");

  // The restarted provider carries on: the open invoice is paid in its portal, and the
  // subscription renews a period later.
  run_blocking(
      again->pay_invoice(portal, view.invoices[0].id, local::read_card(kVisa, "", clock.now())));
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  EXPECT_EQ(run_blocking(again->get_subscription(subscription.id)).status, "active");
  delivered.clear();
  EXPECT_EQ(run_blocking(again->advance(std::chrono::days(30))).renewed, 1);
  EXPECT_THAT(delivered_types(),
              ElementsAre("checkout.session.expired",  // the unpaid one
                          "invoice.payment_succeeded", "customer.subscription.updated"));
  // And what it did is kept in turn.
  EXPECT_EQ(listed(*restarted(), subscription.customer), listed(*again, subscription.customer));
}

// Two changes at once, their saves and deliveries interleaved: each event goes out once, only
// after it is saved, and none stays kept once accepted.
TEST_F(LocalPayments, ChangesAtOnceDeliverEachEventOnce) {
  const auto first = subscribe();
  const auto second = subscribe(checkout_request("h2"));
  delivered.clear();
  webhook = [](std::string, std::string) -> asio::awaitable<void> {  // a webhook that takes time
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::use_awaitable);
  };
  asio::io_context ioc;
  for (const auto* subscription : {&first, &second})
    asio::co_spawn(ioc, provider.cancel_at_period_end(subscription->id), asio::detached);
  ioc.run();
  ASSERT_THAT(delivered_types(),
              ElementsAre("customer.subscription.updated", "customer.subscription.updated"));
  EXPECT_NE(text(delivered[0].event, "id"), text(delivered[1].event, "id"));
  EXPECT_THAT((std::vector{text(delivered[0].object, "id"), text(delivered[1].object, "id")}),
              ::testing::UnorderedElementsAre(first.id, second.id));
  const auto kept = run_blocking(
      db->read([](Tx& tx) { return tx.get<LocalProviderRepo>().local_objects("test"); }));
  ASSERT_FALSE(kept.empty());  // the subscriptions and the rest are kept
  for (const auto& object : kept) EXPECT_NE(object.kind, "event") << object.id;
}

// The stored format, pinned: objects saved as these rows are read back as they were (a change
// to a record that breaks this needs a migration of the saved rows). The subscription is saved as
// earlier versions saved it, without collection_paused and billing_cycle_anchor: members added
// since take their defaults, and with no anchor its months count from its period's end.
TEST_F(LocalPayments, ReadsObjectsInTheStoredFormat) {
  const std::string card = R"({"kind":"succeeds","last4":"4242","exp_month":12,"exp_year":2030})";
  const std::string metadata = R"([["role","hospital"],["role_entity_id","h9"],)"
                               R"(["plan","lite"],["cycle","monthly"]])";
  const std::vector<LocalObject> rows{
      {"customer", "cus_saved", 1,
       R"({"customer":{"id":"cus_saved","email":null,"name":null,"created":1700000000,)"
       R"("metadata":[["role","hospital"],["role_entity_id","h9"]]},"card":)" +
           card + "}"},
      {"subscription", "sub_saved", 1,
       R"({"id":"sub_saved","status":"active","customer":"cus_saved","item_id":"si_saved",)"
       R"("price_id":"price_local_hospital_lite_monthly","current_period_start":1700000000,)"
       R"("current_period_end":1702592000,"cancel_at_period_end":false,"metadata":)" +
           metadata + "}"},
      {"invoice", "in_saved", 1,
       R"({"invoice":{"id":"in_saved","customer":"cus_saved","subscription":"sub_saved",)"
       R"("amount_due":49900,"amount_paid":49900,"currency":"usd","status":"paid",)"
       R"("created":1700000000},"billing_reason":"subscription_create",)"
       R"("price_id":"price_local_hospital_lite_monthly","period_start":1700000000,)"
       R"("period_end":1702592000,"metadata":)" +
           metadata +
           R"(,"payment_intent":"pi_saved","charge":{"id":"ch_saved","amount":49900,)"
           R"("paid":true,"card":)" +
           card + R"(},"paid_at":1700000000})"},
      {"clock", "offset", 1, "86400"},
      {"event", "evt_saved", 1,
       R"({"id":"evt_saved","object":"event","type":"customer.updated","created":1700000000,)"
       R"("data":{"object":{"id":"cus_saved"}}})"},
  };
  run_blocking(db->transact([&](Tx& tx) {
    for (const auto& row : rows) tx.get<LocalProviderRepo>().save_local_object("test", row);
  }));

  auto again = restarted();
  EXPECT_EQ(again->now(), clock.now() + std::chrono::days(1));
  EXPECT_THAT(delivered_types(), ElementsAre("customer.updated"));
  EXPECT_THAT(
      listed(*again, "cus_saved"),
      ElementsAre("sub_saved active cus_saved price_local_hospital_lite_monthly "
                  "1700000000-1702592000 false",
                  "in_saved paid 49900 49900 1700000000 sub_saved", "cus_saved - 1700000000"));
  delivered.clear();
  EXPECT_EQ(run_blocking(again->advance(std::chrono::days(30))).renewed, 1);
  EXPECT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  const auto renewed = run_blocking(again->get_subscription("sub_saved"));
  EXPECT_EQ(renewed.billing_cycle_anchor, 1702592000);
  EXPECT_EQ(renewed.current_period_start, 1702592000);
  EXPECT_EQ(renewed.current_period_end, 1702592000 + 31 * kDay);  // 2023-12-14 to 2024-01-14
}

// A saved object it cannot read stops the start, naming the object.
TEST_F(LocalPayments, AnUnreadableSavedObjectNamesItself) {
  run_blocking(db->transact([&](Tx& tx) {
    tx.get<LocalProviderRepo>().save_local_object(
        "test", {"subscription", "sub_bad", 1, R"({"id":"sub_bad","status":1})"});
  }));
  try {
    restarted();
    ADD_FAILURE() << "read";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("saved subscription sub_bad (LOCAL_PAYMENTS_ACCOUNT test)"));
  }
}

// An event the service refused is kept: it goes out with the provider's next change or, after a
// restart, at start-up; once accepted it is no longer kept.
TEST_F(LocalPayments, RefusedEventsAreKeptAndDeliveredLater) {
  const auto subscription = subscribe();
  refuse_deliveries = true;
  delivered.clear();
  EXPECT_TRUE(run_blocking(provider.cancel_at_period_end(subscription.id)).cancel_at_period_end);
  refuse_deliveries = false;
  open_portal(subscription.customer);  // a change of its own, without events
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));

  refuse_deliveries = true;
  delivered.clear();
  EXPECT_EQ(pay(open_checkout(checkout_request("h2")), kVisa).status, 200);
  refuse_deliveries = false;
  auto again = restarted();
  EXPECT_THAT(delivered_types(),
              ElementsAre("checkout.session.completed", "customer.subscription.created",
                          "invoice.payment_succeeded"));
  delivered.clear();
  restarted();
  EXPECT_TRUE(delivered.empty());
}

// A change the database refuses fails its call and is undone: nothing is sent, and no later
// change saves it (a caller told it failed would otherwise have it happen after all). Made again
// once the database takes it, it is made once.
TEST_F(LocalPayments, AChangeTheDatabaseRefusesIsUndone) {
  const auto subscription = subscribe();
  sql("CREATE TRIGGER refuse_saves BEFORE INSERT ON local_provider_objects "
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  delivered.clear();
  EXPECT_THROW(run_blocking(provider.cancel_at_period_end(subscription.id)), std::runtime_error);
  EXPECT_TRUE(delivered.empty());
  EXPECT_FALSE(run_blocking(provider.get_subscription(subscription.id)).cancel_at_period_end);

  sql("DROP TRIGGER refuse_saves");
  open_portal(subscription.customer);  // a change of its own, without events
  EXPECT_TRUE(delivered.empty());
  EXPECT_FALSE(run_blocking(restarted()->get_subscription(subscription.id)).cancel_at_period_end);
  EXPECT_TRUE(run_blocking(provider.cancel_at_period_end(subscription.id)).cancel_at_period_end);
  EXPECT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  delivered.clear();
  auto again = restarted();
  EXPECT_TRUE(delivered.empty());
  EXPECT_TRUE(run_blocking(again->get_subscription(subscription.id)).cancel_at_period_end);
  EXPECT_EQ(listed(*again, subscription.customer), listed(provider, subscription.customer));
}

// A save reported failed may have been made all the same (a commit that failed late): after one,
// the provider reads its objects again, before its next change or at redeliver()'s next tick,
// and sends the events it finds there. The database is edited here as such a commit would have.
TEST_F(LocalPayments, AfterAFailedSaveTheObjectsAreReadAgain) {
  const auto subscription = subscribe();
  sql("CREATE TRIGGER refuse_saves BEFORE INSERT ON local_provider_objects "
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  EXPECT_THROW(run_blocking(provider.create_portal_session(subscription.customer, "http://x")),
               std::runtime_error);
  sql("DROP TRIGGER refuse_saves;"
      "UPDATE local_provider_objects SET data = json_set(data, '$.cancel_at_period_end', "
      "json('true')) WHERE kind = 'subscription';"
      "INSERT INTO local_provider_objects (account, kind, id, version, data) VALUES ('test', "
      "'event', 'evt_late', 1000, '{\"id\":\"evt_late\",\"type\":\"customer.subscription."
      "updated\",\"data\":{\"object\":{\"id\":\"" +
      subscription.id + "\"}}}')");
  delivered.clear();
  webhook = [this](std::string, std::string) -> asio::awaitable<void> {
    provider.stop();  // redeliver() ends after this round
    co_return;
  };
  asio::io_context ioc;
  asio::co_spawn(ioc, provider.redeliver(std::chrono::milliseconds(1)), asio::detached);
  ioc.run_for(std::chrono::seconds(10));
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  EXPECT_EQ(text(delivered[0].event, "id"), "evt_late");
  EXPECT_TRUE(run_blocking(provider.get_subscription(subscription.id)).cancel_at_period_end);
  webhook = nullptr;
  open_portal(subscription.customer);  // read already: nothing more to send
  EXPECT_EQ(delivered.size(), 1u);
  EXPECT_EQ(listed(*restarted(), subscription.customer), listed(provider, subscription.customer));
}

// The audit's double charge: a checkout paid while the database refuses the save answers an
// error and stays payable; paid again once the database takes it, it makes one subscription,
// charged once, and its events go out once.
TEST_F(LocalPayments, ACheckoutPaidWhileTheDatabaseRefusesStaysPayable) {
  const auto session = open_checkout(checkout_request());
  sql("CREATE TRIGGER refuse_saves BEFORE INSERT ON local_provider_objects "
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  EXPECT_THROW(pay(session, kVisa), std::runtime_error);
  EXPECT_TRUE(delivered.empty());
  EXPECT_NO_THROW(provider.payable_checkout(session));
  EXPECT_TRUE(run_blocking(provider.list_subscriptions({.limit = 100})).data.empty());

  sql("DROP TRIGGER refuse_saves");
  open_checkout(checkout_request("h2"));  // a change of its own, without events
  EXPECT_TRUE(delivered.empty());
  const auto paid = pay(session, kVisa);
  EXPECT_EQ(paid.status, 200) << paid.body;
  EXPECT_THAT(delivered_types(),
              ElementsAre("checkout.session.completed", "customer.subscription.created",
                          "invoice.payment_succeeded"));
  EXPECT_EQ(run_blocking(provider.list_subscriptions({.limit = 100})).data.size(), 1u);
  EXPECT_EQ(integer(last_delivered("invoice.payment_succeeded"), "amount_paid"), 49900);
  EXPECT_EQ(pay(session, kVisa).status, 409);
}

// An advance the database refuses moves no clock and renews nothing.
TEST_F(LocalPayments, AnAdvanceTheDatabaseRefusesMovesNothing) {
  const auto subscription = subscribe();
  const auto before = provider.now();
  sql("CREATE TRIGGER refuse_saves BEFORE UPDATE ON local_provider_objects "
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  EXPECT_THROW(advance(std::chrono::days(31)), std::runtime_error);
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(provider.now(), before);
  EXPECT_EQ(run_blocking(provider.get_subscription(subscription.id)).current_period_end,
            subscription.current_period_end);

  sql("DROP TRIGGER refuse_saves");
  // Nor does the next change (dated after the last events made) move it on.
  open_portal(subscription.customer);
  EXPECT_LE(provider.now() - before, std::chrono::seconds(1));
  EXPECT_EQ(advance(std::chrono::days(31)).renewed, 1);
  EXPECT_EQ(listed(*restarted(), subscription.customer), listed(provider, subscription.customer));
}

// A catalog without a plan that live subscriptions are priced at is refused at the start (they
// could not be renewed). A change that throws halfway, as such a renewal would, changes nothing.
TEST_F(LocalPayments, AStartRefusesACatalogWithoutASubscribedPlan) {
  const auto lite = subscribe(checkout_request("h1"));
  const auto pro = subscribe(checkout_request("h2", BillingCycle::monthly, PlanType::pro));
  std::ifstream in(BILLING_SOURCE_DIR "/config/plans.json");
  auto plans = json::parse(std::string(std::istreambuf_iterator<char>(in), {})).as_object();
  json::array offered;
  for (const auto& plan : plans.at("plans").as_array())
    if (plan.at("role").as_string() != "hospital" || plan.at("plan_type").as_string() != "pro")
      offered.push_back(plan);
  plans["plans"] = std::move(offered);
  const std::string path = testing::make_temp_dir() + "/plans.json";
  std::ofstream(path) << json::serialize(plans);
  const Catalog without_pro = Catalog::load(path);
  try {
    restarted(without_pro);
    ADD_FAILURE() << "started";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("LOCAL_PAYMENTS_ACCOUNT test"));
    EXPECT_THAT(e.what(), HasSubstr("subscription " + pro.id + " is priced"));
    EXPECT_THAT(e.what(), HasSubstr("PLANS_CONFIG"));
  }

  // Such a provider all the same (the catalog changed under a running one): a renewal of both
  // throws at the one it cannot price, and the other's, made before, is undone with it.
  const auto changed = another(without_pro);
  const auto saved = [&] {
    std::vector<std::string> lines;
    for (const auto& object : run_blocking(
             db->read([](Tx& tx) { return tx.get<LocalProviderRepo>().local_objects("test"); })))
      lines.push_back(object.kind + " " + object.id + " " + object.data);
    return lines;
  };
  const auto objects = saved();
  EXPECT_THROW(run_blocking(changed->resume()), std::runtime_error);
  const auto before = changed->now();
  delivered.clear();
  EXPECT_THROW(run_blocking(changed->advance(std::chrono::days(31))), ApiError);
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(changed->now(), before);
  EXPECT_EQ(run_blocking(changed->get_subscription(lite.id)).current_period_end,
            lite.current_period_end);
  EXPECT_EQ(saved(), objects);
}

// An event the webhook accepted but the database did not forget goes out again at the next
// start (the webhook applies each event id once), and is forgotten then.
TEST_F(LocalPayments, AnAcceptedEventNotForgottenIsSentAgainAtTheNextStart) {
  const auto subscription = subscribe();
  sql("CREATE TRIGGER keep_rows BEFORE DELETE ON local_provider_objects "
      "BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  delivered.clear();
  run_blocking(provider.cancel_at_period_end(subscription.id));  // the failed delete is logged
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  const auto id = text(delivered[0].event, "id");

  sql("DROP TRIGGER keep_rows");
  delivered.clear();
  restarted();
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));
  EXPECT_EQ(text(delivered[0].event, "id"), id);
  delivered.clear();
  restarted();
  EXPECT_TRUE(delivered.empty());
}

// A delivery the service refuses leaves the call done, as a call to Stripe's API is whatever its
// webhook answers: the page says paid once paid. redeliver() sends the event again, after waits
// that grow while it is refused, until the service takes it.
TEST_F(LocalPayments, ARefusedDeliveryLeavesTheCallDoneAndIsSentAgain) {
  const auto subscription = subscribe();
  refuse_deliveries = true;
  delivered.clear();
  EXPECT_TRUE(run_blocking(provider.cancel_at_period_end(subscription.id)).cancel_at_period_end);
  refuse_deliveries = false;
  open_portal(subscription.customer);  // a change of its own sends what is pending
  ASSERT_THAT(delivered_types(), ElementsAre("customer.subscription.updated"));

  refuse_deliveries = true;
  delivered.clear();
  const auto page = pay(open_checkout(checkout_request("h2")), kVisa);
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr("Payment succeeded"));
  EXPECT_TRUE(delivered.empty());

  // Each of its three refused events waits 10 s on the service's clock, then 20 s after its
  // second refusal.
  const int refused_once = delivery_attempts;
  webhook = [this](std::string, std::string) -> asio::awaitable<void> {
    provider.stop();  // once one is taken: redeliver() ends after this round
    co_return;
  };
  asio::io_context ioc;
  asio::co_spawn(ioc, provider.redeliver(std::chrono::milliseconds(1)), asio::detached);
  std::vector<int> attempts;  // the deliveries attempted after each step below
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        // After each step, the deliveries expected so far: waited for when more are due (on a
        // busy machine a tick may come late), or given 30 ms of ticks to show that none go out.
        for (const auto& [step, expected] : {std::pair{9, 0}, {1, 3}, {19, 3}, {1, 6}}) {
          clock.advance(std::chrono::seconds(step));
          const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          const auto quiet_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
          while (delivery_attempts - refused_once < expected
                     ? std::chrono::steady_clock::now() < give_up
                     : std::chrono::steady_clock::now() < quiet_until) {
            timer.expires_after(std::chrono::milliseconds(1));
            co_await timer.async_wait(asio::use_awaitable);
          }
          attempts.push_back(delivery_attempts - refused_once);
        }
        refuse_deliveries = false;
        clock.advance(std::chrono::seconds(40));
      },
      asio::detached);
  ioc.run();
  EXPECT_EQ(attempts, (std::vector<int>{0, 3, 3, 6}));
  EXPECT_THAT(delivered_types(),
              ElementsAre("checkout.session.completed", "customer.subscription.created",
                          "invoice.payment_succeeded"));
  delivered.clear();
  restarted();
  EXPECT_TRUE(delivered.empty());  // taken: no longer kept
}

TEST_F(LocalPayments, AdvanceRouteIsTheAdminsAndAnswersTheProviderClock) {
  const Route* route = nullptr;
  for (const Route* r : router.routes())
    if (r->pattern == "/stripe/local/clock/advance") route = r;
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->method, Method::post);
  EXPECT_TRUE(route->policy.admits(Role::admin));
  EXPECT_FALSE(route->policy.admits(Role::hospital));
  EXPECT_FALSE(route->policy.admits(Role::individual));
  EXPECT_TRUE(route->policy.needs_csrf());
  for (const Route* r : router.routes()) {
    if (r == route) continue;
    EXPECT_FALSE(r->policy.needs_token()) << r->pattern;
  }

  subscribe(kFailsLater);
  subscribe(checkout_request("h2"));  // a second later on the provider's clock: see below
  const auto response = call(Method::post, "/stripe/local/clock/advance", R"({"days": 30})");
  EXPECT_EQ(response.status, 200);
  const auto start = kStart + 1;
  EXPECT_EQ(
      json::parse(response.body),
      json::parse(
          R"({"now":")" + iso8601(TimePoint(std::chrono::seconds(start + 30 * kDay))) +
          R"(","renewed":1,"failed":1,"cancelled":0,"expired_checkouts":0,"retried":0,"recovered":0})"));
  const auto seconds =
      call(Method::post, "/stripe/local/clock/advance", R"({"seconds": 90, "days": 1})");
  EXPECT_EQ(json::parse(seconds.body).at("now"),
            json::value(iso8601(TimePoint(std::chrono::seconds(start + 30 * kDay + kDay + 90)))));

  const auto loc_of = [&](const std::string& body) {
    try {
      call(Method::post, "/stripe/local/clock/advance", body);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 422) << body;
      return json::serialize(e.detail.at(0).at("loc"));
    }
    return std::string("accepted");
  };
  EXPECT_EQ(loc_of(""), R"(["body"])");
  EXPECT_EQ(loc_of("[1]"), R"(["body"])");
  EXPECT_EQ(loc_of("{}"), R"(["body","days"])");
  EXPECT_EQ(loc_of(R"({"days": "3"})"), R"(["body","days"])");
  EXPECT_EQ(loc_of(R"({"days": 1.5})"), R"(["body","days"])");
  EXPECT_EQ(loc_of(R"({"days": -1})"), R"(["body","days"])");
  EXPECT_EQ(loc_of(R"({"days": 401})"), R"(["body","days"])");
  // Each bound's own type and message, as FastAPI words them.
  const auto error_of = [&](const std::string& body) {
    try {
      call(Method::post, "/stripe/local/clock/advance", body);
    } catch (const ApiError& e) {
      const auto& detail = e.detail.at(0);
      return std::string(detail.at("type").as_string()) + ": " +
             std::string(detail.at("msg").as_string());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(error_of(R"({"days": -5})"),
            "greater_than_equal: Input should be greater than or equal to 0");
  EXPECT_EQ(error_of(R"({"days": 401})"),
            "less_than_equal: Input should be less than or equal to 400");
  EXPECT_EQ(error_of(R"({"seconds": 34560001})"),
            "less_than_equal: Input should be less than or equal to 34560000");
  EXPECT_EQ(loc_of(R"({"seconds": 99999999999999999999})"), R"(["body","seconds"])");
  EXPECT_EQ(loc_of(R"({"days": 0})"), R"(["body"])");
  EXPECT_EQ(loc_of(R"({"days": 400, "seconds": 1})"), R"(["body"])");
  EXPECT_EQ(loc_of(R"({"days": 400})"), "accepted");
}

// The events, applied by the service's own webhook receiver (as `billing serve` wires it), move
// the plan through its life and record the payments with their fees.
class LocalPaymentsWebhook : public LocalPayments {
 protected:
  WebhookReceiver receiver{*db, EventRules{catalog(), prices}, kSecret, clock,
                           std::string(local::kApiVersion)};
  const EntityRef hospital{EntityKind::hospital, testing::unique_id("hosp")};

  LocalPaymentsWebhook() {
    webhook = [this](std::string signature, std::string payload) -> asio::awaitable<void> {
      co_await receiver.receive(signature, payload);
    };
  }
  Plan plan() {
    return *run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }));
  }
};

// A suspended plan's subscription ends: the plan is cancelled from suspended, its unpaid invoice
// voided, and nothing more is charged (a price change was invoiced when it was made).
TEST_F(LocalPaymentsWebhook, ASuspendedPlansSubscriptionEndsAndThePlanIsCancelled) {
  const auto subscription = subscribe(checkout_request(hospital.id));
  advance(std::chrono::days(15));
  run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                     PlanType::pro, BillingCycle::monthly));
  const auto portal = open_portal(subscription.customer);
  ASSERT_EQ(
      call(Method::post, "/local-pay/portal/" + portal + "/card", card_form(kFailsLater)).status,
      200);
  advance(std::chrono::days(15));
  EXPECT_EQ(plan().status, PlanStatus::suspended);
  advance(std::chrono::days(8));  // the retries, in vain
  EXPECT_EQ(plan().status, PlanStatus::suspended);
  run_blocking(provider.cancel_at_period_end(subscription.id));
  advance_to(month_end(2));
  EXPECT_EQ(plan().status, PlanStatus::cancelled);
  const auto changes =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }));
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.back().from_status, PlanStatus::suspended);
  EXPECT_EQ(changes.back().to_status, PlanStatus::cancelled);
  const auto payments =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }));
  ASSERT_EQ(payments.size(), 2u);  // the checkout's, and the change to pro's
  EXPECT_EQ(payments.back().amount, 49950 - 24950);
}

// A card replaced in the portal is charged at the next retry of the unpaid invoice, which
// reactivates the subscription, and the plan with it, without a visit to pay the invoice.
TEST_F(LocalPaymentsWebhook, ACardReplacedInThePortalPaysAtTheNextRetry) {
  const auto subscription = subscribe(checkout_request(hospital.id), kFailsLater);
  advance(std::chrono::days(30));
  ASSERT_EQ(plan().status, PlanStatus::suspended);
  const auto unpaid = text(last_delivered("invoice.payment_failed"), "id");
  const auto portal = open_portal(subscription.customer);
  delivered.clear();
  ASSERT_EQ(call(Method::post, "/local-pay/portal/" + portal + "/card", card_form(kVisa)).status,
            200);
  EXPECT_TRUE(delivered.empty());  // saved, not charged: the retry charges it
  const auto report = advance(std::chrono::days(3));
  EXPECT_EQ(report.retried, 1);
  EXPECT_EQ(report.recovered, 1);
  ASSERT_THAT(delivered_types(),
              ElementsAre("invoice.payment_succeeded", "customer.subscription.updated"));
  EXPECT_EQ(text(delivered[0].object, "id"), unpaid);
  EXPECT_EQ(integer(delivered[0].object, "attempt_count"), 2);
  EXPECT_EQ(text(delivered[1].object, "status"), "active");
  EXPECT_EQ(plan().status, PlanStatus::active);
  const auto payments =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }));
  ASSERT_EQ(payments.size(), 2u);
  EXPECT_EQ(payments.back().invoice_id, unpaid);
  EXPECT_EQ(advance(std::chrono::days(10)).retried, 0);  // nothing left to retry
}

TEST_F(LocalPaymentsWebhook, EventsDriveThePlanThroughTheServiceWebhook) {
  const auto subscription = subscribe(checkout_request(hospital.id), kFailsLater);
  ASSERT_EQ(delivered[0].type, "checkout.session.completed");
  const auto session = text(delivered[0].object, "id");
  EXPECT_EQ(text(delivered[0].object, "invoice"), text(delivered[2].object, "id"));
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_EQ(plan().plan_type, PlanType::lite);
  EXPECT_EQ(plan().stripe_subscription_id, subscription.id);
  EXPECT_EQ(plan().stripe_customer_id, subscription.customer);

  advance(std::chrono::days(30));
  EXPECT_EQ(plan().status, PlanStatus::suspended);

  const auto portal = open_portal(subscription.customer);
  const auto invoice = text(delivered[0].object, "id");
  EXPECT_EQ(call(Method::post, "/local-pay/portal/" + portal + "/pay",
                 "invoice=" + invoice + "&" + card_form(kVisa))
                .status,
            200);
  EXPECT_EQ(plan().status, PlanStatus::active);

  run_blocking(provider.change_price(subscription.id, "price_local_hospital_pro_monthly",
                                     PlanType::pro, BillingCycle::monthly));
  EXPECT_EQ(plan().plan_type, PlanType::pro);

  run_blocking(provider.cancel_at_period_end(subscription.id));
  EXPECT_TRUE(plan().cancel_at_period_end);
  advance_to(month_end(2));
  EXPECT_EQ(plan().status, PlanStatus::cancelled);

  const auto payments =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }));
  ASSERT_EQ(payments.size(), 3u);
  EXPECT_EQ(payments[0].amount, 49900);
  EXPECT_EQ(payments[0].checkout_session_id, session);
  EXPECT_EQ(payments[1].checkout_session_id, std::nullopt);
  EXPECT_EQ(payments[0].fee_amount, 1477);
  EXPECT_EQ(payments[0].net_amount, 48423);
  EXPECT_EQ(payments[1].invoice_id, invoice);
  EXPECT_EQ(payments[1].fee_amount, 1477);
  // The period it spent on pro, prorated, collected as it ended: 99,900 - 49,900.
  EXPECT_EQ(payments[2].amount, 50000);
  EXPECT_EQ(payments[2].plan_type, PlanType::pro);
  EXPECT_EQ(payments[2].fee_amount, 1480);
}

}  // namespace
}  // namespace billing
