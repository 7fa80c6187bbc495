// Requests no client sends, to the routes that take input, through the binary on every backend:
// JSON bodies mutated (members removed, values of other types, extreme numbers, long strings,
// U+0000, text made to look like SQL), form fields and path and query parameters of junk. Each is
// answered below 500, and the service serves on afterwards.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "kit/run_blocking.hpp"
#include "plans/repo.hpp"
#include "tests/e2e/client.hpp"
#include "tests/stripe/stripe_mock.hpp"
#include "tests/support/json_mutations.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;

constexpr int kMutationsPerRoute = 60;

// Path and query parameters as a browser or a script might escape anything.
const std::vector<std::string>& junk() {
  static const std::vector<std::string> values{"%00",
                                               "a%00b",
                                               "%FF%FE",
                                               std::string(3000, 'a'),
                                               "..%2F..%2Fetc",
                                               "%F0%9F%92%B3",
                                               "'%20OR%201=1--",
                                               "-1",
                                               "0",
                                               "99999999999999999999999",
                                               "%25",
                                               "x%0D%0AX-Injected:%201",
                                               "%20",
                                               "null"};
  return values;
}

class E2eMutations : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<BillingServer> server =
      BillingServer::for_backend(GetParam(), {{"STRIPE_WEBHOOK_SECRET", "whsec_e2e_mutations"},
                                              {"LOCAL_PAYMENTS_ACCOUNT", unique_id("acct")},
                                              // every request reaches its handler
                                              {"RATE_LIMITS", "off"}});
  HttpClient client{server->port()};
  const std::string hospital = unique_id("hosp");
  const std::string hospital_token = sign_token(hospital_user(hospital));
  const std::string individual_token = sign_token(individual_user(unique_id("ind")));
  const std::string admin_token = sign_token(admin_user());
  std::map<std::string, std::string> csrf;  // by token, fetched once

  Headers writing(const std::string& token, std::string_view content_type) {
    auto [at, fresh] = csrf.try_emplace(token);
    if (fresh) at->second = fetch_csrf_token(client, token);
    auto headers = bearer(token);
    headers.emplace_back("X-CSRF-Token", at->second);
    headers.emplace_back("Content-Type", std::string(content_type));
    return headers;
  }
  HttpResponse post_json(const std::string& target, const std::string& body,
                         const std::string& token) {
    return client.post(target, body, writing(token, "application/json"));
  }
  HttpResponse post_form(const std::string& target, const std::string& fields) {
    return client.post(target, fields, {{"Content-Type", "application/x-www-form-urlencoded"}});
  }
  // The id at the end of a local page's URL.
  static std::string last_segment(const json::value& url) {
    const std::string text(url.as_string());
    return text.substr(text.rfind('/') + 1);
  }
};

TEST_P(E2eMutations, NoRequestIsAnsweredWithAServerError) {
  // A paid plan first, so that the routes meet a customer, a subscription and a portal.
  auto response = post_json("/stripe/checkout", R"({"plan_type":"lite","billing_cycle":"monthly"})",
                            hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(post_form("/local-pay/checkout/" + last_segment(response.json().at("checkout_url")),
                      "number=4242424242424242&exp=12%2F30&cvc=123")
                .status,
            200);
  const auto db = open_server_db(*server);
  const auto plan = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital});
  }));
  ASSERT_TRUE(plan && plan->stripe_customer_id && plan->stripe_subscription_id);
  const std::string customer = *plan->stripe_customer_id;
  const std::string subscription = *plan->stripe_subscription_id;
  response = post_json("/stripe/portal-link", "{}", hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string portal = last_segment(response.json().at("portal_url"));
  response = post_json("/stripe/checkout", R"({"plan_type":"lite","billing_cycle":"yearly"})",
                       individual_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string session = last_segment(response.json().at("checkout_url"));

  std::map<int, int> statuses;  // how many requests were answered with each
  const auto answered = [&](const HttpResponse& r, const std::string& what) {
    ++statuses[r.status];
    EXPECT_LT(r.status, 500) << what.substr(0, 600) << "\n" << r.body.substr(0, 300);
  };

  // JSON bodies, each route's valid one mutated one to three times.
  struct JsonRoute {
    std::string target;
    std::string token;
    json::value body;
  };
  const std::vector<JsonRoute> routes{
      {"/billing/plan/select", hospital_token, {{"plan_type", "pro"}, {"id", hospital}}},
      {"/billing/plan/select",
       admin_token,
       {{"plan_type", "lite"}, {"id", hospital}, {"role", "hospital"}}},
      {"/billing/services/select",
       hospital_token,
       {{"hospital_id", hospital}, {"services", json::array{"privacy", "checklist"}}}},
      {"/stripe/checkout", individual_token, {{"plan_type", "pro"}, {"billing_cycle", "monthly"}}},
      {"/stripe/portal-link", hospital_token, json::object{}},
      {"/stripe/subscription/cancel", hospital_token, {{"subscription_id", subscription}}},
      {"/stripe/local/clock/advance", admin_token, {{"days", 1}, {"seconds", 5}}},
  };
  std::mt19937_64 random(20261127);
  const std::string token = unique_id("m");
  for (const auto& route : routes) {
    for (const char* raw : {"", "{", "[]", "null", "\"x\"", "{\"a\":1}{", "\xFF\xFE"})
      answered(post_json(route.target, raw, route.token), route.target + " " + raw);
    for (int i = 0; i < kMutationsPerRoute; ++i) {
      json::value body = route.body;
      const int mutations = 1 + static_cast<int>(random() % 3);
      for (int m = 0; m < mutations; ++m) testing::mutate(body, random, token);
      const std::string text = json::serialize(body);
      answered(post_json(route.target, text, route.token), route.target + " " + text);
    }
  }

  // Junk in paths and queries, as an owner and as an admin.
  for (const auto& value : junk()) {
    for (const std::string& target :
         {"/stripe/subscription/" + value, "/stripe/customer/" + value + "/invoices",
          "/stripe/customer/" + customer + "/invoices?limit=" + value + "&starting_after=" + value,
          "/stripe/admin/customers?limit=" + value,
          "/stripe/admin/subscriptions?starting_after=" + value,
          "/billing/plan/current?entity_id=" + value, "/billing/plan?" + value + "=" + value,
          "/billing/services?hospital_id=" + value, "/local-pay/checkout/" + value,
          "/local-pay/portal/" + value}) {
      for (const auto* caller : {&hospital_token, &admin_token})
        answered(client.get(target, bearer(*caller)), "GET " + target);
    }
    // The local pages' forms.
    const std::string card = "number=" + value + "&exp=" + value + "&cvc=" + value;
    answered(post_form("/local-pay/checkout/" + session, card), "checkout form " + card);
    answered(post_form("/local-pay/checkout/" + session + "/confirm", "x=" + value),
             "confirm form " + value);
    answered(post_form("/local-pay/portal/" + portal + "/pay", "invoice=" + value + "&" + card),
             "portal pay " + value);
    answered(post_form("/local-pay/portal/" + portal + "/card", card), "portal card " + value);
    answered(post_form("/local-pay/portal/" + portal + "/cancel", "subscription=" + value),
             "portal cancel " + value);
  }

  // Some still valid, most refused as the input they are (not all 404s of routes never reached).
  EXPECT_GT(statuses[200], 50);
  EXPECT_GT(statuses[422], 200);
  EXPECT_EQ(client.get("/billing/health").status, 200);
  EXPECT_EQ(server->wait_exit(std::chrono::milliseconds(0)), std::nullopt) << server->log();
}

// With Stripe as the provider (stripe-mock, which refuses what Stripe refuses): junk that reaches
// the provider's API is a 4xx of ours too, never Stripe's refusal passed on as a 502.
TEST(E2eStripeMutations, JunkForStripeIsAnsweredWithoutAServerError) {
  const auto mock = stripe_test::started_or_skipped();
  if (!mock) return;
  auto env = stripe_provider_env(mock->base_url(), "whsec_e2e_stripe_mutations");
  env.emplace_back("RATE_LIMITS", "off");
  auto server = BillingServer::for_backend("sqlite", std::move(env));
  HttpClient client(server->port());
  const auto admin_token = sign_token(admin_user());
  auto headers = bearer(admin_token);
  headers.emplace_back("X-CSRF-Token", fetch_csrf_token(client, admin_token));
  headers.emplace_back("Content-Type", "application/json");
  for (const auto& value : junk()) {
    for (const std::string& target :
         {"/stripe/subscription/" + value, "/stripe/customer/" + value + "/invoices",
          "/stripe/customer/cus_123/invoices?limit=" + value + "&starting_after=" + value,
          "/stripe/admin/customers?limit=" + value,
          "/stripe/admin/subscriptions?starting_after=" + value}) {
      const auto response = client.get(target, bearer(admin_token));
      EXPECT_LT(response.status, 500) << "GET " << target.substr(0, 300) << "\n" << response.body;
    }
  }
  std::mt19937_64 random(20261127);
  const std::string token = unique_id("m");
  for (int i = 0; i < kMutationsPerRoute; ++i) {
    json::value body = {{"subscription_id", "sub_123"}};
    testing::mutate(body, random, token);
    const auto text = json::serialize(body);
    const auto response = client.post("/stripe/subscription/cancel", text, headers);
    EXPECT_LT(response.status, 500) << text.substr(0, 300) << "\n" << response.body;
  }
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eMutations, ::testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
