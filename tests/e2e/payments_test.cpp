// A paid plan's whole life through HTTP, on every backend, with the local provider: checkout ->
// paid -> active -> renewal fails -> suspended -> portal pays -> active -> plan change -> cancel
// at period end -> period ends -> cancelled, checking plans, payments, stripe_audit and
// plan_update_history at each step.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "kit/run_blocking.hpp"
#include "payments/repo.hpp"
#include "payments/webhook_signature.hpp"
#include "plans/repo.hpp"
#include "tests/e2e/client.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;

class E2ePayments : public ::testing::TestWithParam<std::string> {
 protected:
  const std::string local_account = unique_id("acct");
  static constexpr const char* kWebhookSecret = "whsec_e2e_payments";
  std::unique_ptr<BillingServer> server = BillingServer::for_backend(
      GetParam(),
      {{"LOCAL_PAYMENTS_ACCOUNT", local_account}, {"STRIPE_WEBHOOK_SECRET", kWebhookSecret}});
  HttpClient client{server->port()};
  const std::string hospital = unique_id("hosp");
  const EntityRef owner{EntityKind::hospital, hospital};
  const std::string hospital_token = sign_token(hospital_user(hospital));
  const std::string admin_token = sign_token(admin_user());
  std::unique_ptr<Db> db = open_server_db(*server);

  Headers writing(const std::string& token) {
    auto headers = bearer(token);
    headers.emplace_back("X-CSRF-Token", fetch_csrf_token(client, token));
    headers.emplace_back("Content-Type", "application/json");
    return headers;
  }
  HttpResponse post_json(const std::string& target, const json::value& body,
                         const std::string& token) {
    return client.post(target, json::serialize(body), writing(token));
  }
  // A form on one of the local provider's pages, as a browser posts it.
  HttpResponse post_form(const std::string& url, const std::string& fields) {
    return client.post(path_of(url), fields,
                       {{"Content-Type", "application/x-www-form-urlencoded"}});
  }
  static std::string path_of(const std::string& url) {
    return std::string(boost::urls::parse_uri(url).value().encoded_path());
  }

  Plan plan() {
    auto p = run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(owner); }));
    if (!p) throw std::runtime_error("no plan");
    return *p;
  }
  // How many services GET /billing/services says the hospital can use now.
  std::size_t services_available() {
    const auto response = client.get("/billing/services", bearer(hospital_token));
    if (response.status != 200) throw std::runtime_error("GET /billing/services: " + response.body);
    const auto body = response.json();
    std::size_t available = 0;
    for (const auto& service : body.at("services").as_array())
      available += service.at("is_available").as_bool();
    return available;
  }
  std::vector<Payment> payments() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  }
  std::vector<PlanChange> history() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().history(owner); }));
  }
  // The newest history row's reason: "<event type> <event id>" when an event made it.
  std::string last_reason() { return history().back().reason; }
  // The id of the newest event of `type` the server applied, as its log says.
  std::string last_applied(std::string_view type) {
    const auto log = server->log();
    std::string id;
    for (std::size_t start = 0, end; start < log.size(); start = end + 1) {
      end = std::min(log.find('\n', start), log.size());
      const std::string_view line(log.data() + start, end - start);
      if (line.find("\"webhook event applied\"") == std::string_view::npos) continue;
      const auto entry = json::parse(line).as_object();
      if (entry.at("type").as_string() == type) id = entry.at("event_id").as_string();
    }
    return id;
  }
  // The audit status of the event a history reason names (its one audit row).
  AuditStatus audited(const std::string& reason) {
    const auto event_id = reason.substr(reason.rfind(' ') + 1);
    const auto rows = run_blocking(
        db->read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(event_id); }));
    if (rows.size() != 1) throw std::runtime_error("expected one audit row for " + event_id);
    return rows[0].status;
  }
  // Monthly checkouts of these plan types, all opened before any is paid (tabs), then paid in
  // order with Stripe's test card.
  void pay_checkouts_opened_together(std::initializer_list<const char*> plan_types) {
    std::vector<std::string> checkout_urls;
    for (const auto* type : plan_types) {
      const auto response = post_json(
          "/stripe/checkout", {{"plan_type", type}, {"billing_cycle", "monthly"}}, hospital_token);
      ASSERT_EQ(response.status, 200) << response.body;
      checkout_urls.emplace_back(response.json().at("checkout_url").as_string());
    }
    for (const auto& url : checkout_urls)
      ASSERT_EQ(post_form(url, "number=4242424242424242&exp=12%2F30&cvc=123").status, 200);
  }
  HttpResponse advance_days(int days) {
    return post_json("/stripe/local/clock/advance", {{"days", days}}, admin_token);
  }
};

// Behind a proxy, the local pages' links are where browsers reach the service (PUBLIC_URL).
TEST(E2eLocalPayments, LinksAreMadeOnThePublicUrl) {
  auto server =
      BillingServer::for_backend("sqlite", {{"PUBLIC_URL", "https://billing.example.test:8443"},
                                            {"STRIPE_WEBHOOK_SECRET", "whsec_e2e_public"}});
  HttpClient client(server->port());
  const auto token = sign_token(hospital_user(unique_id("hosp")));
  const auto response =
      client.post("/stripe/checkout", R"({"plan_type":"lite","billing_cycle":"monthly"})",
                  {{"Authorization", "Bearer " + token},
                   {"X-CSRF-Token", fetch_csrf_token(client, token)},
                   {"Content-Type", "application/json"}});
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string url(response.json().at("checkout_url").as_string());
  EXPECT_TRUE(url.starts_with("https://billing.example.test:8443/local-pay/checkout/cs_")) << url;
}

TEST_P(E2ePayments, APaidPlansWholeLife) {
  // Checkout: the service's own page, paid with Stripe's test card.
  auto response = post_json("/stripe/checkout",
                            {{"plan_type", "lite"}, {"billing_cycle", "monthly"}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string checkout_url(response.json().at("checkout_url").as_string());
  EXPECT_TRUE(checkout_url.starts_with("http://127.0.0.1:" + std::to_string(server->port()) +
                                       "/local-pay/checkout/cs_"))
      << checkout_url;
  response = client.get(path_of(checkout_url));
  ASSERT_EQ(response.status, 200);
  EXPECT_NE(response.body.find("<form"), std::string::npos);
  response = post_form(checkout_url, "number=4242+4242+4242+4242&exp=12%2F30&cvc=123");
  ASSERT_EQ(response.status, 200) << response.body;

  Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.plan_type, PlanType::lite);
  EXPECT_EQ(p.billing_cycle, BillingCycle::monthly);
  ASSERT_TRUE(p.stripe_customer_id && p.stripe_subscription_id);
  EXPECT_EQ(p.selected_services.size(), 3u);  // lite's defaults
  EXPECT_EQ(services_available(), 5u);        // lite's offer
  auto paid = payments();
  ASSERT_EQ(paid.size(), 1u);
  EXPECT_EQ(paid[0].amount, 49900);
  EXPECT_EQ(paid[0].fee_amount, 1477);  // 2.9% + 30 cents
  EXPECT_EQ(paid[0].net_amount, 48423);
  EXPECT_EQ(paid[0].subscription_id, p.stripe_subscription_id);
  EXPECT_TRUE(last_reason().starts_with("checkout.session.completed evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);

  // The card on file starts failing; the renewal a month later fails: suspended.
  response = post_json("/stripe/portal-link", json::object{}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  std::string portal_url(response.json().at("portal_url").as_string());
  response = post_form(portal_url + "/card", "number=4000000000000341&exp=12%2F30&cvc=123");
  ASSERT_LT(response.status, 400) << response.body;
  response = advance_days(31);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("failed").as_int64(), 1);
  EXPECT_EQ(plan().status, PlanStatus::suspended);
  EXPECT_EQ(services_available(), 0u);
  EXPECT_EQ(payments().size(), 1u);
  EXPECT_TRUE(last_reason().starts_with("invoice.payment_failed evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);
  EXPECT_TRUE(server->wait_for_log("payment failed: to follow up", 5s)) << server->log();
  const auto follow_ups = [&] {
    const auto log = server->log();
    std::size_t count = 0;
    for (auto at = log.find("payment failed: to follow up"); at != std::string::npos;
         at = log.find("payment failed: to follow up", at + 1))
      ++count;
    return count;
  };
  EXPECT_EQ(follow_ups(), 1u);  // one failed attempt, one line
  // Suspended, the plan waits for that invoice: neither another plan nor a second subscription
  // (the first would still be charged) until it is paid.
  const auto history_rows = history().size();
  for (const auto& [target, body] :
       {std::pair("/billing/plan/select", json::object{{"plan_type", "pro"}, {"id", hospital}}),
        std::pair("/stripe/checkout",
                  json::object{{"plan_type", "pro"}, {"billing_cycle", "monthly"}})}) {
    response = post_json(target, body, hospital_token);
    EXPECT_EQ(response.status, 409) << target << ": " << response.body;
    EXPECT_TRUE(response.detail_text().starts_with("The plan is suspended until its subscription"))
        << response.body;
  }
  EXPECT_EQ(plan().status, PlanStatus::suspended);
  EXPECT_EQ(plan().plan_type, PlanType::lite);
  EXPECT_EQ(history().size(), history_rows);

  // The month-old portal link has expired; a new one shows the open invoice, and paying it there
  // reactivates the plan.
  EXPECT_EQ(client.get(path_of(portal_url)).status, 410);
  response = post_json("/stripe/portal-link", json::object{}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  portal_url = response.json().at("portal_url").as_string();
  response = client.get(path_of(portal_url));
  ASSERT_EQ(response.status, 200);
  const auto open_at = response.body.find("name=\"invoice\" value=\"in_");
  ASSERT_NE(open_at, std::string::npos) << response.body;
  const auto id_start = response.body.find("in_", open_at);
  const auto invoice = response.body.substr(id_start, response.body.find('"', id_start) - id_start);
  response = post_form(portal_url + "/pay",
                       "invoice=" + invoice + "&number=4242424242424242&exp=12%2F30&cvc=123");
  ASSERT_LT(response.status, 400) << response.body;
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_EQ(services_available(), 5u);
  EXPECT_TRUE(last_reason().starts_with("invoice.payment_succeeded evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);
  paid = payments();
  ASSERT_EQ(paid.size(), 2u);
  EXPECT_EQ(paid[1].invoice_id, invoice);

  // A plan change while paying: the subscription's price moves, and the plan follows.
  response =
      post_json("/billing/plan/select", {{"plan_type", "pro"}, {"id", hospital}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  p = plan();
  EXPECT_EQ(p.plan_type, PlanType::pro);
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.pending_plan_type, std::nullopt);
  EXPECT_TRUE(last_reason().starts_with("customer.subscription.updated evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);
  // Prorated and charged at once: the rest of the month at pro less the unused part of lite.
  paid = payments();
  ASSERT_EQ(paid.size(), 3u);
  EXPECT_GT(paid[2].amount, 0);
  EXPECT_LE(paid[2].amount, 99900 - 49900);  // the whole difference at a period's start
  EXPECT_EQ(paid[2].plan_type, PlanType::pro);
  ASSERT_TRUE(paid[2].fee_amount && paid[2].net_amount);
  EXPECT_EQ(*paid[2].fee_amount + *paid[2].net_amount, paid[2].amount);
  EXPECT_EQ(audited("invoice.payment_succeeded " + last_applied("invoice.payment_succeeded")),
            AuditStatus::ok);
  // An admin's manual contract would be undone by the subscription's next event: refused.
  response =
      post_json("/billing/plan/select", {{"plan_type", "lite"}, {"id", hospital}}, admin_token);
  EXPECT_EQ(response.status, 409) << response.body;
  EXPECT_EQ(plan().plan_type, PlanType::pro);

  // Cancel at period end: still active until the period ends, then cancelled, history kept.
  response = post_json("/stripe/subscription/cancel",
                       {{"subscription_id", *p.stripe_subscription_id}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("status").as_string(), "active");
  EXPECT_TRUE(response.json().at("cancel_at_period_end").as_bool());
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_TRUE(plan().cancel_at_period_end);
  // Its event changed no plan type or status (no history row), and is audited all the same.
  const auto cancelling = last_applied("customer.subscription.updated");
  ASSERT_FALSE(cancelling.empty()) << server->log();
  EXPECT_NE(last_reason(), "customer.subscription.updated " + cancelling);
  EXPECT_EQ(audited("customer.subscription.updated " + cancelling), AuditStatus::ok);
  ASSERT_EQ(advance_days(31).status, 200);
  p = plan();
  EXPECT_EQ(p.status, PlanStatus::cancelled);
  EXPECT_EQ(services_available(), 0u);
  EXPECT_TRUE(last_reason().starts_with("customer.subscription.deleted evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);
  EXPECT_EQ(payments().size(), 3u);  // nothing more owed at the end
  // Nothing left to cancel: said plainly, not as a provider failure.
  response = post_json("/stripe/subscription/cancel",
                       {{"subscription_id", *p.stripe_subscription_id}}, hospital_token);
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.detail_text(), "Subscription is already canceled");

  std::vector<PlanStatus> statuses;
  for (const auto& change : history()) statuses.push_back(change.to_status);
  EXPECT_EQ(statuses.front(), PlanStatus::active);
  EXPECT_NE(std::find(statuses.begin(), statuses.end(), PlanStatus::suspended), statuses.end());
  EXPECT_EQ(statuses.back(), PlanStatus::cancelled);

  // An admin's manual contract once the subscription has ended holds none: its owner can buy one.
  response =
      post_json("/billing/plan/select", {{"plan_type", "lite"}, {"id", hospital}}, admin_token);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_EQ(plan().stripe_subscription_id, std::nullopt);
  response = post_json("/stripe/checkout", {{"plan_type", "pro"}, {"billing_cycle", "monthly"}},
                       hospital_token);
  EXPECT_EQ(response.status, 200) << response.body;
}

// A paying owner moves to the yearly cycle with POST /billing/plan/select (checkout refuses a
// second subscription): the subscription's price changes, the plan follows, and a year is billed
// from then on.
TEST_P(E2ePayments, APaidPlanMovesToTheYearlyCycle) {
  pay_checkouts_opened_together({"lite"});
  auto response = post_json("/stripe/checkout",
                            {{"plan_type", "lite"}, {"billing_cycle", "yearly"}}, hospital_token);
  EXPECT_EQ(response.status, 409) << response.body;
  response = post_json("/billing/plan/select",
                       {{"plan_type", "lite"}, {"id", hospital}, {"billing_cycle", "yearly"}},
                       hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  // The answer is the choice as made: pending until the provider confirms it.
  EXPECT_EQ(response.json().at("billing_cycle"), "monthly");
  EXPECT_EQ(response.json().at("pending_billing_cycle"), "yearly");
  Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.plan_type, PlanType::lite);
  EXPECT_EQ(p.billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(p.pending_billing_cycle, std::nullopt);
  const auto changed = last_applied("customer.subscription.updated");
  ASSERT_FALSE(changed.empty()) << server->log();
  EXPECT_EQ(audited("customer.subscription.updated " + changed), AuditStatus::ok);
  response = client.get("/billing/plan/current", bearer(hospital_token));
  EXPECT_EQ(response.json().at("billing_cycle"), "yearly") << response.body;

  // The year is billed at once, less the month unused (all of it, but for a few seconds).
  auto paid = payments();
  ASSERT_EQ(paid.size(), 2u);
  EXPECT_EQ(paid[1].amount, 479040 - 49900);
  EXPECT_EQ(paid[1].cycle, BillingCycle::yearly);
  EXPECT_EQ(paid[1].plan_type, PlanType::lite);
  // The month's end renews nothing.
  ASSERT_EQ(advance_days(31).status, 200);
  EXPECT_EQ(payments().size(), 2u);
  EXPECT_EQ(plan().status, PlanStatus::active);
}

// A change of interval the card on file cannot pay is refused with the card's error, and nothing
// of it stays: the plan paid for goes on as it was.
TEST_P(E2ePayments, ACycleChangeTheCardRefusesLeavesThePlanAsItWas) {
  auto response = post_json("/stripe/checkout",
                            {{"plan_type", "lite"}, {"billing_cycle", "monthly"}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string checkout_url(response.json().at("checkout_url").as_string());
  // Stripe's 0341 card: the checkout goes through, later charges are declined.
  ASSERT_EQ(post_form(checkout_url, "number=4000000000000341&exp=12%2F30&cvc=123").status, 200);
  response = post_json("/billing/plan/select",
                       {{"plan_type", "lite"}, {"id", hospital}, {"billing_cycle", "yearly"}},
                       hospital_token);
  EXPECT_EQ(response.status, 402) << response.body;
  EXPECT_EQ(response.detail_text(), "Your card was declined");
  const Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.billing_cycle, BillingCycle::monthly);
  EXPECT_EQ(p.pending_billing_cycle, std::nullopt);
  EXPECT_EQ(payments().size(), 1u);
  EXPECT_EQ(server->log().find("\"plan selected\""), std::string::npos);  // refused: none made
}

// A plan no subscription pays for (an admin's contract) stays active while its owner's choice of
// another waits as pending; the checkout for that one, once paid, makes it the plan and clears
// the pending choice.
TEST_P(E2ePayments, APendingChoiceBecomesThePlanWhenItsCheckoutIsPaid) {
  // The hospital's own first choice makes it known (inactive until paid); the admin's is active.
  auto response =
      post_json("/billing/plan/select", {{"plan_type", "lite"}, {"id", hospital}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  response =
      post_json("/billing/plan/select", {{"plan_type", "lite"}, {"id", hospital}}, admin_token);
  ASSERT_EQ(response.status, 200) << response.body;
  response =
      post_json("/billing/plan/select", {{"plan_type", "pro"}, {"id", hospital}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const auto waiting = [&] {
    const Plan p = plan();
    EXPECT_EQ(p.status, PlanStatus::active);
    EXPECT_EQ(p.plan_type, PlanType::lite);
    EXPECT_EQ(p.pending_plan_type, PlanType::pro);
  };
  waiting();
  response = post_json("/stripe/checkout", {{"plan_type", "pro"}, {"billing_cycle", "monthly"}},
                       hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string checkout_url(response.json().at("checkout_url").as_string());
  waiting();  // opening a checkout changes nothing
  response = post_form(checkout_url, "number=4000000000000002&exp=12%2F30&cvc=123");
  EXPECT_EQ(response.status, 402);  // declined: nothing either
  waiting();

  ASSERT_EQ(post_form(checkout_url, "number=4242424242424242&exp=12%2F30&cvc=123").status, 200);
  const Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.plan_type, PlanType::pro);
  EXPECT_EQ(p.pending_plan_type, std::nullopt);
  EXPECT_TRUE(p.stripe_subscription_id.has_value());
  EXPECT_TRUE(last_reason().starts_with("checkout.session.completed evt_"));
  EXPECT_EQ(audited(last_reason()), AuditStatus::ok);
  const auto paid = payments();
  ASSERT_EQ(paid.size(), 1u);
  EXPECT_EQ(paid[0].amount, 99900);
  EXPECT_EQ(paid[0].plan_type, PlanType::pro);
}

// Two checkouts opened before either was paid (two tabs), then both paid: the plan stays with the
// first subscription, both payments are recorded, and the payer can see and cancel the second.
TEST_P(E2ePayments, TheSecondOfTwoPaidCheckoutsIsItsPayersToCancel) {
  ASSERT_NO_FATAL_FAILURE(pay_checkouts_opened_together({"lite", "lite"}));
  const Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(payments().size(), 2u);
  std::string second;
  const auto subscriptions = client.get("/stripe/admin/subscriptions", bearer(admin_token)).json();
  for (const auto& s : subscriptions.at("data").as_array())
    if (s.at("id").as_string() != *p.stripe_subscription_id &&
        s.at("metadata").at("role_entity_id").as_string() == hospital) {
      second = s.at("id").as_string();
      // One customer for the entity: both charges are on its invoices and in its portal.
      EXPECT_EQ(s.at("customer").as_string(), *p.stripe_customer_id);
    }
  ASSERT_FALSE(second.empty());
  const auto invoices =
      client.get("/stripe/customer/" + *p.stripe_customer_id + "/invoices", bearer(hospital_token));
  ASSERT_EQ(invoices.status, 200);
  EXPECT_EQ(invoices.json().at("data").as_array().size(), 2u);

  const auto stranger = sign_token(hospital_user(unique_id("hosp")));
  EXPECT_EQ(client.get("/stripe/subscription/" + second, bearer(stranger)).status, 403);
  EXPECT_EQ(
      post_json("/stripe/subscription/cancel", {{"subscription_id", second}}, stranger).status,
      403);
  EXPECT_EQ(client.get("/stripe/subscription/sub_nothing", bearer(stranger)).status, 403);
  EXPECT_EQ(client.get("/stripe/subscription/" + second, bearer(hospital_token)).status, 200);
  const auto cancel =
      post_json("/stripe/subscription/cancel", {{"subscription_id", second}}, hospital_token);
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_TRUE(cancel.json().at("cancel_at_period_end").as_bool());
  EXPECT_EQ(plan(), p);  // the plan's own subscription goes on
}

// The same two paid checkouts (lite, then pro), but the payer cancels the first, the one the plan
// follows: when its period ends the plan goes on with the second, which is still charged, rather
// than ending.
TEST_P(E2ePayments, WhenThePlansSubscriptionEndsItGoesOnWithTheSecond) {
  ASSERT_NO_FATAL_FAILURE(pay_checkouts_opened_together({"lite", "pro"}));
  const Plan first = plan();
  ASSERT_EQ(first.plan_type, PlanType::lite);
  const auto cancel =
      post_json("/stripe/subscription/cancel", {{"subscription_id", *first.stripe_subscription_id}},
                hospital_token);
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  ASSERT_EQ(advance_days(31).status, 200);
  const Plan p = plan();
  EXPECT_EQ(p.status, PlanStatus::active);
  EXPECT_EQ(p.plan_type, PlanType::pro);
  ASSERT_TRUE(p.stripe_subscription_id);
  EXPECT_NE(*p.stripe_subscription_id, *first.stripe_subscription_id);
  EXPECT_TRUE(last_reason().starts_with("customer.subscription.deleted evt_"));
  // The second renewed meanwhile: three payments, the last for it.
  const auto paid = payments();
  ASSERT_EQ(paid.size(), 3u);
  EXPECT_EQ(paid.back().subscription_id, p.stripe_subscription_id);
}

// Lists page as Stripe's do: `limit`, then `starting_after` the last id seen, until `has_more`
// is false; newest first. Three hospitals' customers and subscriptions, one's two invoices.
TEST_P(E2ePayments, ListsPageAsStripesDo) {
  for (int i = 0; i < 3; ++i) {
    const auto token = i == 0 ? hospital_token : sign_token(hospital_user(unique_id("hosp")));
    const auto response =
        post_json("/stripe/checkout", {{"plan_type", "lite"}, {"billing_cycle", "monthly"}}, token);
    ASSERT_EQ(response.status, 200) << response.body;
    ASSERT_EQ(post_form(response.json().at("checkout_url").as_string().c_str(),
                        "number=4242424242424242&exp=12%2F30&cvc=123")
                  .status,
              200);
  }
  const auto oldest_customer = *plan().stripe_customer_id;  // the fixture's hospital's, first
  const auto page = [&](const std::string& target) {
    const auto response = client.get(target, bearer(admin_token));
    EXPECT_EQ(response.status, 200) << target << ": " << response.body;
    const auto body = response.json();
    EXPECT_EQ(body.at("object").as_string(), "list") << target;
    std::vector<std::string> ids;
    for (const auto& item : body.at("data").as_array()) ids.emplace_back(item.at("id").as_string());
    return std::pair(ids, body.at("has_more").as_bool());
  };
  for (const std::string list : {"/stripe/admin/customers", "/stripe/admin/subscriptions"}) {
    SCOPED_TRACE(list);
    const auto [first, more] = page(list + "?limit=2");
    ASSERT_EQ(first.size(), 2u);
    EXPECT_TRUE(more);
    const auto [rest, more_after] = page(list + "?limit=2&starting_after=" + first.back());
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_FALSE(more_after);
    EXPECT_EQ(page(list).first, (std::vector{first[0], first[1], rest[0]}));  // limit 10
  }
  // The oldest customer is the last of the newest-first list.
  EXPECT_EQ(page("/stripe/admin/customers").first.back(), oldest_customer);

  ASSERT_EQ(advance_days(31).status, 200);  // every subscription renews: a second invoice each
  const auto invoices = "/stripe/customer/" + oldest_customer + "/invoices";
  const auto [newest, more] = page(invoices + "?limit=1");
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_TRUE(more);
  const auto [older, more_after] = page(invoices + "?limit=1&starting_after=" + newest[0]);
  ASSERT_EQ(older.size(), 1u);
  EXPECT_FALSE(more_after);
  EXPECT_EQ(page(invoices).first, (std::vector{newest[0], older[0]}));
}

TEST_P(E2ePayments, UsersReachOnlyTheirOwnBilling) {
  auto response = post_json("/stripe/checkout",
                            {{"plan_type", "lite"}, {"billing_cycle", "monthly"}}, hospital_token);
  ASSERT_EQ(response.status, 200);
  ASSERT_EQ(post_form(response.json().at("checkout_url").as_string().c_str(),
                      "number=4242424242424242&exp=12%2F30&cvc=123")
                .status,
            200);
  const Plan p = plan();
  const auto stranger = sign_token(hospital_user(unique_id("hosp")));
  const auto assistant = sign_token(assistant_user(unique_id("asst"), hospital));
  for (const auto& target : {"/stripe/subscription/" + *p.stripe_subscription_id,
                             "/stripe/customer/" + *p.stripe_customer_id + "/invoices"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(client.get(target, bearer(hospital_token)).status, 200);
    EXPECT_EQ(client.get(target, bearer(admin_token)).status, 200);
    for (const auto& other : {stranger, assistant}) {
      response = client.get(target, bearer(other));
      EXPECT_EQ(response.status, 403);
      EXPECT_EQ(response.detail_text(), "Unauthorized");
    }
  }
  response =
      client.get("/stripe/subscription/" + *p.stripe_subscription_id, bearer(hospital_token));
  EXPECT_EQ(response.json().at("status").as_string(), "active");
  EXPECT_EQ(response.json().at("metadata").at("role_entity_id").as_string(), hospital);
  response =
      client.get("/stripe/customer/" + *p.stripe_customer_id + "/invoices", bearer(hospital_token));
  EXPECT_EQ(response.json().at("data").as_array().size(), 1u);
  EXPECT_EQ(response.json().at("data").at(0).at("amount_paid").as_int64(), 49900);
  response = post_json("/stripe/subscription/cancel",
                       {{"subscription_id", *p.stripe_subscription_id}}, stranger);
  EXPECT_EQ(response.status, 403);

  // An individual pays for their own plan: they reach their billing, not the hospital's, nor
  // the hospital theirs.
  const EntityRef practitioner{EntityKind::individual, unique_id("ind")};
  const auto individual_token = sign_token(individual_user(practitioner.id));
  response = post_json("/stripe/checkout", {{"plan_type", "pro"}, {"billing_cycle", "yearly"}},
                       individual_token);
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(post_form(std::string(response.json().at("checkout_url").as_string()),
                      "number=4242424242424242&exp=12%2F30&cvc=123")
                .status,
            200);
  const auto theirs =
      *run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(practitioner); }));
  for (const auto& [own, others] : {std::pair(std::pair(individual_token, theirs), hospital_token),
                                    std::pair(std::pair(hospital_token, p), individual_token)}) {
    const auto& [token, owned] = own;
    for (const auto& target : {"/stripe/subscription/" + *owned.stripe_subscription_id,
                               "/stripe/customer/" + *owned.stripe_customer_id + "/invoices"}) {
      SCOPED_TRACE(target);
      EXPECT_EQ(client.get(target, bearer(token)).status, 200);
      response = client.get(target, bearer(others));
      EXPECT_EQ(response.status, 403);
      EXPECT_EQ(response.detail_text(), "Unauthorized");
    }
    response = post_json("/stripe/subscription/cancel",
                         {{"subscription_id", *owned.stripe_subscription_id}}, others);
    EXPECT_EQ(response.status, 403);
  }

  // Admin lists, paginated as Stripe paginates.
  response = client.get("/stripe/admin/customers?limit=1", bearer(admin_token));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("data").as_array().size(), 1u);
  EXPECT_EQ(client.get("/stripe/admin/subscriptions", bearer(hospital_token)).status, 403);
  EXPECT_EQ(client.get("/stripe/admin/customers?limit=0", bearer(admin_token)).status, 422);
  response = client.get("/stripe/admin/customers?starting_after=cus_nope", bearer(admin_token));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.detail_text(), "No such customer: cus_nope");
  response = client.get("/stripe/subscription/sub_nothing", bearer(admin_token));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.detail_text(), "No such subscription: sub_nothing");
  response = client.get("/stripe/health");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.json(), (json::value{{"status", "healthy"}, {"service", "stripe"}}));

  // A second checkout while a subscription pays: refused, the plan change goes another way.
  response = post_json("/stripe/checkout", {{"plan_type", "pro"}, {"billing_cycle", "monthly"}},
                       hospital_token);
  EXPECT_EQ(response.status, 409);
  response = post_json("/stripe/checkout", {{"plan_type", "basic"}, {"billing_cycle", "monthly"}},
                       hospital_token);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.detail_text(), "Price mapping not found for (hospital, basic, monthly)");
}

// The local provider keeps its objects in the database: after the service is killed (SIGKILL)
// and started again on the same database, the subscription is still there, and it renews.
TEST_P(E2ePayments, ASubscriptionOutlivesAKilledService) {
  auto response = post_json("/stripe/checkout",
                            {{"plan_type", "lite"}, {"billing_cycle", "monthly"}}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(post_form(std::string(response.json().at("checkout_url").as_string()),
                      "number=4242424242424242&exp=12%2F30&cvc=123")
                .status,
            200);
  const Plan paid = plan();
  ASSERT_EQ(paid.status, PlanStatus::active);
  ASSERT_EQ(advance_days(10).status, 200);

  server->signal(SIGKILL);
  ASSERT_TRUE(server->wait_exit(10s));
  const auto killed = std::move(server);  // its directory holds the SQLite file
  server = std::make_unique<BillingServer>(BillingServer::Options{
      .database_url = killed->database_url(), .env = {{"LOCAL_PAYMENTS_ACCOUNT", local_account}}});
  HttpClient again{server->port()};
  client = std::move(again);

  response =
      client.get("/stripe/subscription/" + *paid.stripe_subscription_id, bearer(hospital_token));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("status").as_string(), "active");
  response =
      client.get("/stripe/customer/" + *paid.stripe_customer_id + "/invoices", bearer(admin_token));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("data").as_array().size(), 1u);
  // The provider's clock kept its 10 days: 21 more end the first month, and the card renews.
  response = advance_days(21);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.json().at("renewed").as_int64(), 1);
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_EQ(payments().size(), 2u);
}

// Two updates of one second that disagree, delivered reversed (made by hand, signed with the
// webhook secret): the plan takes the later delivered, then the service asks the provider (here
// the local one, whose subscription is still on lite) and the plan follows it.
TEST_P(E2ePayments, SameSecondUpdatesAreSettledByAskingTheProvider) {
  pay_checkouts_opened_together({"lite"});
  ASSERT_EQ(plan().plan_type, PlanType::lite);
  const std::string subscription = *plan().stripe_subscription_id;
  const std::int64_t second = *plan().last_event_created + 1;
  for (const char* price :
       {"price_local_hospital_lite_monthly", "price_local_hospital_pro_monthly"}) {
    const std::string event = json::serialize(json::object{
        {"id", unique_id("evt")},
        {"object", "event"},
        {"type", "customer.subscription.updated"},
        {"created", second},
        {"data",
         {{"object",
           {{"id", subscription},
            {"object", "subscription"},
            {"status", "active"},
            {"items", {{"data", json::array{{{"id", "si_1"}, {"price", {{"id", price}}}}}}}},
            {"metadata",
             {{"role", "hospital"},
              {"role_entity_id", hospital},
              {"plan", "lite"},
              {"cycle", "monthly"}}}}}}}});
    const auto response = client.post(
        "/stripe/webhook", event,
        {{"Content-Type", "application/json"},
         {"Stripe-Signature",
          WebhookSignature(kWebhookSecret).sign(event, std::chrono::system_clock::now())}});
    ASSERT_EQ(response.status, 200) << response.body;
  }
  EXPECT_TRUE(eventually([&] { return plan().plan_type == PlanType::lite; }, 10s, 10ms))
      << server->log();
  EXPECT_TRUE(server->wait_for_log("subscription check settled", 10s)) << server->log();
  const auto rows = history();
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(rows[rows.size() - 2].to_plan_type, PlanType::pro);  // the tie, delivered last
  EXPECT_EQ(rows.back().to_plan_type, PlanType::lite);
  EXPECT_TRUE(last_reason().starts_with("customer.subscription.updated evt_state_"))
      << last_reason();
}

TEST_P(E2ePayments, ADeclinedCardChangesNothing) {
  const auto response = post_json(
      "/stripe/checkout", {{"plan_type", "pro"}, {"billing_cycle", "yearly"}}, hospital_token);
  ASSERT_EQ(response.status, 200);
  const std::string url(response.json().at("checkout_url").as_string());
  for (const char* card : {"4000000000000002", "4000000000009995"}) {
    SCOPED_TRACE(card);
    EXPECT_EQ(post_form(url, std::string("number=") + card + "&exp=12%2F30&cvc=123").status, 402);
  }
  EXPECT_THROW(plan(), std::runtime_error);
  EXPECT_TRUE(payments().empty());
}

INSTANTIATE_TEST_SUITE_P(E2e, E2ePayments, ::testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

// The local provider's pages in a real browser: Debian's Chromium, driven by Playwright
// (tests/pages/browse.mjs), clicking through the forms as a customer would. scripts/test.sh
// installs both and sets BILLING_REQUIRE_BROWSER=1; without them the tests are skipped.
class E2ePages : public E2ePayments {
 protected:
  void SetUp() override {
    const bool ready =
        std::filesystem::exists(kBrowse) &&
        std::filesystem::exists(BILLING_SOURCE_DIR "/tests/pages/node_modules/playwright-core") &&
        std::filesystem::exists("/usr/bin/chromium") && std::filesystem::exists("/usr/bin/node");
    const char* required = std::getenv("BILLING_REQUIRE_BROWSER");
    if (ready) return;
    if (required && std::string_view(required) == "1")
      FAIL()
          << "BILLING_REQUIRE_BROWSER=1 but Chromium, Node.js or playwright-core is missing (run "
             "scripts/test.sh, which installs them)";
    GTEST_SKIP() << "no Chromium, Node.js and playwright-core (scripts/test.sh installs them)";
  }

  // What the page was after each step (browse.mjs's steps); fails the test if a step failed.
  struct Seen {
    std::string url, title, text;
    std::optional<int> status;
  };
  std::vector<Seen> browse(const json::array& steps) {
    TempDir dir;
    const std::string result = dir.path() + "/result.json";
    const std::string log = dir.path() + "/browser.log";
    const int code =
        run_command({"/usr/bin/node", kBrowse, json::serialize(steps), result}, log, 60s);
    if (code != 0) {
      ADD_FAILURE() << "the browser failed (" << code << "):\n"
                    << read_file(log) << "\nbilling's log:\n"
                    << server->log();
      return {};
    }
    std::vector<Seen> seen;
    const json::value pages = json::parse(read_file(result));
    for (const auto& page : pages.as_array()) {
      const auto& o = page.as_object();
      seen.push_back({std::string(o.at("url").as_string()), std::string(o.at("title").as_string()),
                      std::string(o.at("text").as_string()),
                      o.at("status").is_null() ? std::nullopt
                                               : std::optional<int>(static_cast<int>(
                                                     o.at("status").to_number<double>()))});
    }
    return seen;
  }
  static json::object fill_card(std::string_view form, std::string_view number) {
    const std::string in = std::string(form) + " input[name=";
    return {
        {"fill", json::array{json::array{in + "number]", number}, json::array{in + "exp]", "12/30"},
                             json::array{in + "cvc]", "123"}}}};
  }
  std::string checkout(std::string_view plan_type) {
    const auto response =
        post_json("/stripe/checkout", {{"plan_type", plan_type}, {"billing_cycle", "monthly"}},
                  hospital_token);
    EXPECT_EQ(response.status, 200) << response.body;
    return std::string(response.json().at("checkout_url").as_string());
  }

  static constexpr const char* kBrowse = BILLING_SOURCE_DIR "/tests/pages/browse.mjs";
};

// Declined, tried again with the card that asks the bank's confirmation: the confirm step, then
// paid; the plan is active with the plan bought. Then the portal: the paid invoice is listed, and
// the subscription is cancelled at its period's end with the page's button.
TEST_P(E2ePages, ACustomerPaysThroughTheConfirmStepAndCancelsInThePortal) {
  const std::string url = checkout("pro");
  const auto seen = browse(json::array{
      {{"goto", url}},
      fill_card("form", "4000000000000002"),
      {{"click", "button:has-text('Pay')"}},
      {{"click", "a:has-text('Try again')"}},
      fill_card("form", "4000000000003220"),
      {{"click", "button:has-text('Pay')"}},
      {{"click", "button:has-text('Confirm payment')"}},
  });
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[0].title, "Checkout");
  EXPECT_NE(seen[0].text.find("$999.00 per month"), std::string::npos) << seen[0].text;
  EXPECT_EQ(seen[2].status, 402);
  EXPECT_EQ(seen[2].title, "Your card was declined");
  EXPECT_EQ(seen[3].title, "Checkout");  // the session is still open
  EXPECT_EQ(seen[5].title, "Authentication required");
  EXPECT_NE(seen[5].text.find("card ending 3220"), std::string::npos) << seen[5].text;
  EXPECT_EQ(seen[6].title, "Payment succeeded");
  EXPECT_EQ(seen[6].status, 200);
  EXPECT_EQ(plan().status, PlanStatus::active);
  EXPECT_EQ(plan().plan_type, PlanType::pro);
  ASSERT_EQ(payments().size(), 1u);
  EXPECT_EQ(payments()[0].amount, 99900);

  const auto response = post_json("/stripe/portal-link", json::object{}, hospital_token);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string portal(response.json().at("portal_url").as_string());
  const auto portal_seen = browse(json::array{
      {{"goto", portal}},
      {{"click", "button:has-text(\"Cancel at the period's end\")"}},
  });
  ASSERT_EQ(portal_seen.size(), 2u);
  EXPECT_EQ(portal_seen[0].title, "Billing");
  EXPECT_NE(portal_seen[0].text.find("$999.00\tpaid"), std::string::npos) << portal_seen[0].text;
  EXPECT_EQ(portal_seen[1].title, "Subscription cancelled");
  EXPECT_NE(portal_seen[1].text.find("It stays active until"), std::string::npos)
      << portal_seen[1].text;
  EXPECT_TRUE(plan().cancel_at_period_end);
  EXPECT_EQ(plan().status, PlanStatus::active);
}

INSTANTIATE_TEST_SUITE_P(E2e, E2ePages, ::testing::Values("sqlite"),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
