// GET /metrics and the structured log, end to end: known requests, then a scrape parsed by the
// Prometheus client's own parser (tests/e2e/prometheus_parse.py) and counted exactly; the
// METRICS_TOKEN and METRICS_PORT guards; JSON log lines with request ids, and LOG_FORMAT=text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "client.hpp"
#include "kit/crypto.hpp"
#include "tests/stripe/stripe_mock.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;
using testing::HasSubstr;

const std::string kParser = BILLING_SOURCE_DIR "/tests/e2e/prometheus_parse.py";
constexpr std::string_view kMetricsToken = "e2e-metrics-token-0123456789";

// A scrape, as the Prometheus client's parser read it.
class Scrape {
 public:
  explicit Scrape(const std::string& text) {
    TempDir dir;
    const auto source = dir.path() + "/metrics.txt";
    const auto target = dir.path() + "/metrics.json";
    std::ofstream(source) << text;
    const int code =
        run_command({"/usr/bin/python3", kParser, source, target}, dir.path() + "/parser.log");
    std::ifstream in(target);
    std::stringstream parsed;
    parsed << in.rdbuf();
    result_ = json::parse(parsed.str()).as_object();
    if (code != 0) throw std::runtime_error("the parser refused the scrape: " + parsed.str());
  }

  // The value of the one sample named `name` whose labels include `labels`; -1 if none, and a
  // failure if several match.
  double value(std::string_view name, const std::map<std::string, std::string>& labels = {}) const {
    double found = -1;
    int matches = 0;
    for (const auto& s : result_.at("samples").as_array()) {
      const auto& sample = s.as_object();
      if (sample.at("name").as_string() != name || !has_labels(sample, labels)) continue;
      ++matches;
      const auto& v = sample.at("value");
      found = v.is_string() ? INFINITY : v.to_number<double>();
    }
    EXPECT_LE(matches, 1) << name;
    return found;
  }
  // The sum over the samples named `name` whose labels include `labels`.
  double sum(std::string_view name, const std::map<std::string, std::string>& labels = {}) const {
    double total = 0;
    for (const auto& s : result_.at("samples").as_array()) {
      const auto& sample = s.as_object();
      if (sample.at("name").as_string() == name && has_labels(sample, labels))
        total += sample.at("value").to_number<double>();
    }
    return total;
  }
  std::string type(std::string_view family) const {
    const auto* t = result_.at("families").as_object().if_contains(family);
    return t ? std::string(t->as_string()) : "";
  }

 private:
  static bool has_labels(const json::object& sample,
                         const std::map<std::string, std::string>& labels) {
    const auto& have = sample.at("labels").as_object();
    for (const auto& [key, value] : labels) {
      const auto* v = have.if_contains(key);
      if (!v || v->as_string() != value) return false;
    }
    return true;
  }
  json::object result_;
};

Scrape scrape(HttpClient& client, Headers headers = {}) {
  const auto response = client.get("/metrics", std::move(headers));
  if (response.status != 200)
    throw std::runtime_error("GET /metrics: " + std::to_string(response.status));
  EXPECT_EQ(response.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return Scrape(response.body);
}

Headers with_csrf(const std::string& token, const std::string& csrf) {
  Headers headers = bearer(token);
  headers.emplace_back("X-CSRF-Token", csrf);
  return headers;
}

// The service's own line (not the access log's) with this message and request id.
const json::object* log_line(const std::vector<json::object>& lines, std::string_view message,
                             std::string_view request_id) {
  for (const auto& line : lines) {
    const auto* m = line.if_contains("message");
    const auto* id = line.if_contains("request_id");
    if (m && id && m->as_string() == message && id->as_string() == request_id) return &line;
  }
  return nullptr;
}

class E2eMetrics : public ::testing::TestWithParam<std::string> {};

TEST_P(E2eMetrics, CountsTheRequestsMadeExactly) {
  auto server = BillingServer::for_backend(GetParam(), {{"HTTP_THREADS", "2"}});
  HttpClient client(server->port());
  const auto hospital = unique_id("hosp");
  const auto other_hospital = unique_id("hosp");
  const auto individual = unique_id("ind");
  const auto hospital_token = sign_token(hospital_user(hospital));
  const auto other_token = sign_token(hospital_user(other_hospital));
  const auto individual_token = sign_token(individual_user(individual));

  const auto select = [&](const std::string& token, const std::string& csrf, std::string_view plan,
                          const std::string& id) {
    return client.post("/billing/plan/select",
                       json::serialize(json::object{{"plan_type", plan}, {"id", id}}),
                       with_csrf(token, csrf));
  };
  const auto hospital_csrf = fetch_csrf_token(client, hospital_token);
  const auto other_csrf = fetch_csrf_token(client, other_token);
  const auto individual_csrf = fetch_csrf_token(client, individual_token);
  ASSERT_EQ(select(hospital_token, hospital_csrf, "lite", hospital).status, 200);
  ASSERT_EQ(select(other_token, other_csrf, "pro", other_hospital).status, 200);
  ASSERT_EQ(select(individual_token, individual_csrf, "pro", individual).status, 200);
  // CSRF refusals: none sent, and another user's.
  EXPECT_EQ(client.post("/billing/plan/select", "{}", bearer(hospital_token)).status, 403);
  EXPECT_EQ(select(hospital_token, other_csrf, "pro", hospital).status, 403);
  // Authentication refusals: no token, and a malformed one.
  EXPECT_EQ(client.get("/billing/plan").status, 401);
  EXPECT_EQ(client.get("/billing/plan", bearer("not-a-jwt")).status, 401);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.get("/billing/health").status, 200);
  EXPECT_EQ(client.get("/nope").status, 404);

  const auto first = scrape(client);
  const auto requests = [&](std::string route, std::string method, std::string status) {
    return first.value("billing_http_requests_total",
                       {{"route", route}, {"method", method}, {"status", status}});
  };
  EXPECT_EQ(first.type("billing_http_requests"), "counter");
  EXPECT_EQ(requests("/csrf-token", "GET", "200"), 3);
  EXPECT_EQ(requests("/billing/plan/select", "POST", "200"), 3);
  EXPECT_EQ(requests("/billing/plan/select", "POST", "403"), 2);
  EXPECT_EQ(requests("/billing/plan", "GET", "401"), 2);
  EXPECT_EQ(requests("/billing/health", "GET", "200"), 3);
  EXPECT_EQ(requests("unmatched", "OTHER", "404"), 1);      // whatever the method
  EXPECT_EQ(first.sum("billing_http_requests_total"), 14);  // the scrape counts once it is done
  EXPECT_EQ(first.type("billing_http_request_duration_seconds"), "histogram");
  const std::map<std::string, std::string> health{{"route", "/billing/health"}, {"method", "GET"}};
  EXPECT_EQ(first.value("billing_http_request_duration_seconds_count", health), 3);
  auto health_inf = health;
  health_inf["le"] = "+Inf";
  EXPECT_EQ(first.value("billing_http_request_duration_seconds_bucket", health_inf), 3);
  EXPECT_GT(first.value("billing_http_request_duration_seconds_sum", health), 0);

  EXPECT_EQ(first.value("billing_auth_failures_total", {{"reason", "missing"}}), 1);
  EXPECT_EQ(first.value("billing_auth_failures_total", {{"reason", "malformed"}}), 1);
  EXPECT_EQ(first.sum("billing_auth_failures_total"), 2);
  EXPECT_EQ(first.value("billing_csrf_failures_total", {{"reason", "missing"}}), 1);
  EXPECT_EQ(first.value("billing_csrf_failures_total", {{"reason", "other_user"}}), 1);
  EXPECT_EQ(first.sum("billing_csrf_failures_total"), 2);

  const auto selections = [&](std::string role, std::string plan) {
    return first.value("billing_plan_selections_total",
                       {{"role", role}, {"plan", plan}, {"effect", "awaiting_payment"}});
  };
  EXPECT_EQ(selections("hospital", "lite"), 1);
  EXPECT_EQ(selections("hospital", "pro"), 1);
  EXPECT_EQ(selections("individual", "pro"), 1);
  EXPECT_EQ(first.sum("billing_plan_selections_total"), 3);
  EXPECT_EQ(first.sum("billing_rate_limit_rejections_total"), 0);

  const std::string backend = GetParam() == "sqlite" ? "sqlite" : "postgresql";
  EXPECT_GT(first.sum("billing_db_units_total", {{"backend", backend}, {"outcome", "ok"}}), 0);
  EXPECT_EQ(first.sum("billing_db_units_total", {{"outcome", "error"}}), 0);
  EXPECT_GE(first.value("billing_db_pool_connections", {{"backend", backend}}), 1);
  EXPECT_GT(first.value("process_resident_memory_bytes"), 1e6);
  EXPECT_GE(first.value("billing_http_open_connections"), 1);
  EXPECT_EQ(first.value("billing_build_info"), 1);

  const auto second = scrape(client);
  EXPECT_EQ(second.value("billing_http_requests_total",
                         {{"route", "/metrics"}, {"method", "GET"}, {"status", "200"}}),
            1);
  EXPECT_EQ(second.sum("billing_http_requests_total"), 15);

  // A gauge of the moment: the sweep of subscription checks, which reads as the service starts,
  // may hold a unit when a scrape comes (one time in a few hundred on PostgreSQL). Once it is
  // done, none is left running.
  EXPECT_TRUE(eventually(
      [&] {
        return scrape(client).value("billing_db_units_in_flight", {{"backend", backend}}) == 0;
      },
      5s, 50ms));
}

TEST_P(E2eMetrics, WebhookEventsAreCountedByTypeAndOutcome) {
  constexpr std::string_view kSecret = "whsec_e2e_metrics_0123456789";
  auto server =
      BillingServer::for_backend(GetParam(), {{"STRIPE_WEBHOOK_SECRET", std::string(kSecret)}});
  HttpClient client(server->port());
  const auto deliver = [&](const std::string& payload) {
    const auto t = std::to_string(unix_now());
    const auto v1 = hex_encode(as_chars(HmacSha256(kSecret)({t, ".", payload})));
    return client.post("/stripe/webhook", payload, {{"Stripe-Signature", "t=" + t + ",v1=" + v1}});
  };
  const auto event = [](std::string_view type, std::string_view api_version = "2023-10-16") {
    return json::serialize(json::object{{"id", unique_id("evt")},
                                        {"object", "event"},
                                        {"api_version", api_version},
                                        {"type", type},
                                        {"created", unix_now()},
                                        {"data", {{"object", {{"id", unique_id("obj")}}}}}});
  };
  const auto failed = event("invoice.payment_failed");
  EXPECT_EQ(deliver(failed).status, 200);
  EXPECT_EQ(deliver(failed).status, 200);  // Stripe's redelivery
  EXPECT_EQ(deliver(event("customer.created")).status, 200);
  // Rendered at a newer version than the service pins: applied, counted and logged.
  EXPECT_EQ(deliver(event("customer.updated", "2025-03-31.basil")).status, 200);
  // Unsigned, or signed with another secret: refused before anything is parsed.
  EXPECT_EQ(client.post("/stripe/webhook", failed).status, 400);
  EXPECT_EQ(client.post("/stripe/webhook", failed, {{"Stripe-Signature", "t=1,v1=00"}}).status,
            400);

  const auto metrics = scrape(client);
  EXPECT_EQ(metrics.value("billing_webhook_signature_failures_total"), 2);
  EXPECT_EQ(metrics.sum("billing_webhook_events_total", {{"type", "invoice.payment_failed"}}), 2);
  EXPECT_EQ(metrics.value("billing_webhook_events_total",
                          {{"type", "invoice.payment_failed"}, {"outcome", "duplicate"}}),
            1);
  EXPECT_EQ(metrics.sum("billing_webhook_events_total", {{"type", "other"}}), 2);
  EXPECT_EQ(metrics.sum("billing_webhook_events_total", {{"outcome", "failed"}}), 0);
  EXPECT_EQ(metrics.sum("billing_webhook_events_total"), 4);
  EXPECT_EQ(metrics.value("billing_webhook_other_api_version_events_total"), 1);
  EXPECT_THAT(server->log(), HasSubstr("webhook event of another Stripe API version"));
  EXPECT_EQ(metrics.type("billing_webhook_processing_seconds"), "histogram");
  EXPECT_EQ(metrics.value("billing_webhook_processing_seconds_count",
                          {{"type", "invoice.payment_failed"}}),
            2);
}

// The service in Stripe mode against stripe-mock: each call to Stripe's API is counted once, by
// endpoint (as Stripe's libraries name it) and outcome.
TEST(E2eStripeMetrics, CallsToStripeAreCountedByEndpointAndOutcome) {
  const auto mock = stripe_test::started_or_skipped();
  if (!mock) return;
  auto env = stripe_provider_env(mock->base_url(), "whsec_e2e_stripe_metrics");
  env.emplace_back("PRICE_HOSP_LITE_MONTHLY", "price_hosp_lite_monthly");
  auto server = BillingServer::for_backend("sqlite", std::move(env));
  HttpClient client(server->port());
  const auto hospital_token = sign_token(hospital_user(unique_id("hosp")));
  const auto admin_token = sign_token(admin_user());

  ASSERT_EQ(client.get("/stripe/health").status, 200);
  ASSERT_EQ(client.get("/stripe/health").status, 200);  // the first's check, reused
  auto headers = with_csrf(hospital_token, fetch_csrf_token(client, hospital_token));
  headers.emplace_back("Content-Type", "application/json");
  const auto checkout =
      client.post("/stripe/checkout", R"({"plan_type":"lite","billing_cycle":"monthly"})", headers);
  ASSERT_EQ(checkout.status, 200) << checkout.body;
  ASSERT_EQ(client.get("/stripe/admin/customers?limit=2", bearer(admin_token)).status, 200);
  // A plan with no price mapped is refused before any call, in the specification's words.
  const auto unmapped =
      client.post("/stripe/checkout", R"({"plan_type":"pro","billing_cycle":"monthly"})", headers);
  EXPECT_EQ(unmapped.status, 400);
  EXPECT_EQ(unmapped.detail_text(), "Price mapping not found for (hospital, pro, monthly)");

  const auto metrics = scrape(client);
  EXPECT_EQ(metrics.type("billing_stripe_api_calls"), "counter");
  const auto calls = [&](std::string endpoint, std::string outcome) {
    return metrics.value("billing_stripe_api_calls_total",
                         {{"endpoint", endpoint}, {"outcome", outcome}});
  };
  EXPECT_EQ(calls("account.retrieve", "ok"), 1);
  EXPECT_EQ(calls("customers.create", "ok"), 1);  // the hospital's first checkout
  EXPECT_EQ(calls("checkout.sessions.create", "ok"), 1);
  EXPECT_EQ(calls("customers.list", "ok"), 1);
  EXPECT_EQ(calls("subscriptions.update", "ok"), 0);  // every pair is there, zeros included
  EXPECT_EQ(metrics.sum("billing_stripe_api_calls_total"), 4);
  EXPECT_EQ(metrics.sum("billing_stripe_api_retries_total"), 0);
  EXPECT_EQ(metrics.type("billing_stripe_api_call_duration_seconds"), "histogram");
  EXPECT_EQ(metrics.value("billing_stripe_api_call_duration_seconds_count",
                          {{"endpoint", "account.retrieve"}}),
            1);
}

TEST_P(E2eMetrics, TokenGuardsTheScrape) {
  auto server =
      BillingServer::for_backend(GetParam(), {{"METRICS_TOKEN", std::string(kMetricsToken)}});
  HttpClient client(server->port());
  const auto anonymous = client.get("/metrics");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.header("www-authenticate"), "Bearer");
  EXPECT_EQ(client.get("/metrics", bearer("e2e-metrics-token-012345678X")).status, 401);
  EXPECT_EQ(client.get("/metrics", bearer("short")).status, 401);
  // A user's JWT is no metrics token.
  EXPECT_EQ(client.get("/metrics", bearer(sign_token(admin_user()))).status, 401);
  const auto metrics = scrape(client, bearer(std::string(kMetricsToken)));
  EXPECT_EQ(metrics.value("billing_http_requests_total",
                          {{"route", "/metrics"}, {"method", "GET"}, {"status", "401"}}),
            4);
  EXPECT_EQ(metrics.sum("billing_auth_failures_total"), 0);  // not the API's authentication
}

TEST_P(E2eMetrics, PortOfItsOwnServesOnlyMetrics) {
  auto server = BillingServer::for_backend(
      GetParam(), {{"METRICS_PORT", "0"}, {"METRICS_TOKEN", std::string(kMetricsToken)}});
  const std::string marker = "billing metrics on http://127.0.0.1:";
  const auto log = server->log();
  const auto at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const auto metrics_port =
      static_cast<unsigned short>(std::stoi(log.substr(at + marker.size(), 6)));
  ASSERT_NE(metrics_port, server->port());

  HttpClient api(server->port());
  EXPECT_EQ(api.get("/billing/health").status, 200);
  EXPECT_EQ(api.get("/metrics", bearer(std::string(kMetricsToken))).status, 404);

  HttpClient metrics_client(metrics_port);
  EXPECT_EQ(metrics_client.get("/billing/health").status, 404);
  EXPECT_EQ(metrics_client.get("/metrics").status, 401);
  const auto metrics = scrape(metrics_client, bearer(std::string(kMetricsToken)));
  EXPECT_EQ(metrics.value("billing_http_requests_total",
                          {{"route", "/billing/health"}, {"method", "GET"}, {"status", "200"}}),
            1);
  // Scrapes on the metrics port are not among the API's requests.
  EXPECT_EQ(metrics.sum("billing_http_requests_total", {{"route", "/metrics"}}), 0);
  EXPECT_EQ(metrics.sum("billing_http_requests_total", {{"route", "unmatched"}}), 1);
}

TEST_P(E2eMetrics, LogLinesAreJsonWithTheRequestId) {
  auto server = BillingServer::for_backend(GetParam());
  HttpClient client(server->port());
  const auto hospital = unique_id("hosp");
  const auto token = sign_token(hospital_user(hospital));
  const auto refused = client.get("/billing/plan", bearer("not-a-jwt"));
  ASSERT_EQ(refused.status, 401);
  const auto csrf_refused = client.post("/billing/plan/select", "{}", bearer(token));
  ASSERT_EQ(csrf_refused.status, 403);
  const auto selected =
      client.post("/billing/plan/select", R"({"plan_type":"pro","id":")" + hospital + R"("})",
                  with_csrf(token, fetch_csrf_token(client, token)));
  ASSERT_EQ(selected.status, 200) << selected.body;

  std::vector<json::object> lines;
  const auto logged = [&](std::string_view message, const HttpResponse& response) {
    lines = json_lines(server->log());
    return log_line(lines, message, response.header("x-request-id")) != nullptr;
  };
  ASSERT_TRUE(eventually([&] { return logged("plan selected", selected); }, 5s)) << server->log();
  const auto* auth = log_line(lines, "authentication failed", refused.header("x-request-id"));
  ASSERT_NE(auth, nullptr) << server->log();
  EXPECT_EQ(auth->at("level").as_string(), "warning");
  EXPECT_EQ(auth->at("reason").as_string(), "malformed");
  EXPECT_THAT(server->log(), testing::Not(HasSubstr("not-a-jwt")));  // never the token
  const auto* csrf = log_line(lines, "CSRF token refused", csrf_refused.header("x-request-id"));
  ASSERT_NE(csrf, nullptr) << server->log();
  EXPECT_EQ(csrf->at("reason").as_string(), "missing");
  EXPECT_EQ(csrf->at("entity").as_string(), hospital);
  const auto* plan = log_line(lines, "plan selected", selected.header("x-request-id"));
  EXPECT_EQ(plan->at("level").as_string(), "info");
  EXPECT_EQ(plan->at("entity").as_string(), hospital);
  EXPECT_EQ(plan->at("plan").as_string(), "pro");
  EXPECT_EQ(plan->at("cycle").as_string(), "none");  // no payment yet
  EXPECT_EQ(plan->at("effect").as_string(), "awaiting_payment");
  for (const auto& line : lines) {
    EXPECT_TRUE(line.contains("time")) << json::serialize(line);
    EXPECT_TRUE(line.contains("message") || line.contains("method")) << json::serialize(line);
  }
}

TEST(E2eLogFormat, TextForPeopleAtATerminal) {
  auto server = BillingServer::for_backend("sqlite", {{"LOG_FORMAT", "text"}});
  HttpClient client(server->port());
  const auto refused = client.get("/billing/plan");
  ASSERT_EQ(refused.status, 401);
  const auto id = refused.header("x-request-id");
  ASSERT_TRUE(eventually(
      [&] { return server->log().find(" access GET /billing/plan 401 ") != std::string::npos; },
      5s))
      << server->log();
  const auto log = server->log();
  EXPECT_THAT(log, HasSubstr("warning authentication failed request_id=" + id +
                             " reason=missing route=/billing/plan"));
  EXPECT_THAT(log, HasSubstr("ms request_id=" + id));
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) EXPECT_FALSE(line.starts_with('{')) << line;
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eMetrics, testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
