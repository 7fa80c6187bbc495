// Two replicas behind nginx (deploy/nginx.conf, run as it is with the test's ports), on one
// database and one Redis: rate limits and plans are shared, a webhook event delivered to both at
// the same moment is applied once, a replica killed mid-load costs no request but those it had
// in flight, and Redis stopped and started again changes nothing a client sees.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <latch>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/serialize.hpp>

#include "kit/run_blocking.hpp"
#include "payments/repo.hpp"
#include "tests/e2e/client.hpp"
#include "tests/e2e/private_redis.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;

constexpr std::string_view kSecret = "whsec_e2e_replicas_0123456789";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void replace(std::string& text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " is not in deploy/nginx.conf";
  text.replace(at, from.size(), to);
}

unsigned short unused_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(
      ioc, {boost::asio::ip::address_v4::loopback(), static_cast<unsigned short>(0)});
  return acceptor.local_endpoint().port();
}

// Debian's nginx with deploy/nginx.conf inside a minimal main configuration of the test's own.
class Nginx {
 public:
  Nginx(unsigned short first, unsigned short second) {
    // Workers run as nobody when the test runs as root: they must reach the directory.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755));
    std::string site = read_text(BILLING_SOURCE_DIR "/deploy/nginx.conf");
    port_ = unused_port();
    replace(site, "listen 80;", "listen 127.0.0.1:" + std::to_string(port_) + ";");
    replace(site, "127.0.0.1:8001", "127.0.0.1:" + std::to_string(first));
    replace(site, "127.0.0.1:8002", "127.0.0.1:" + std::to_string(second));
    std::ofstream(dir_.path() + "/billing.conf") << site;
    const auto& d = dir_.path();
    std::ofstream(d + "/nginx.conf")
        << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log warn;\n"
        << "worker_processes 1;\nevents { worker_connections 256; }\n"
        << "http {\n  access_log off;\n  client_body_temp_path " << d << "/body;\n"
        << "  proxy_temp_path " << d << "/proxy;\n  include " << d << "/billing.conf;\n}\n";
    const int rc =
        run_command({"/usr/sbin/nginx", "-p", d, "-c", d + "/nginx.conf"}, d + "/start.log");
    if (rc != 0) throw std::runtime_error("nginx did not start:\n" + read_text(d + "/start.log"));
    if (!eventually([&] { return !connection_refused(port_); }, 10s))
      throw std::runtime_error("nginx does not listen:\n" + read_text(d + "/error.log"));
  }
  ~Nginx() {
    run_command(
        {"/usr/sbin/nginx", "-p", dir_.path(), "-c", dir_.path() + "/nginx.conf", "-s", "stop"},
        dir_.path() + "/stop.log");
  }
  unsigned short port() const { return port_; }

 private:
  TempDir dir_;
  unsigned short port_ = 0;
};

class E2eReplicas : public ::testing::TestWithParam<std::string> {
 protected:
  PrivateRedis redis;
  Env env{{"REDIS_URL", redis.url()}, {"STRIPE_WEBHOOK_SECRET", std::string(kSecret)}};
  std::unique_ptr<BillingServer> first = BillingServer::for_backend(GetParam(), env);
  std::unique_ptr<BillingServer> second = std::make_unique<BillingServer>(
      BillingServer::Options{.database_url = first->database_url(), .env = env});
  Nginx nginx{first->port(), second->port()};
  HttpClient through_nginx{nginx.port()};
  const std::string hospital = unique_id("hosp");
  const std::string admin = sign_token(admin_user());

  HttpResponse as_admin_select(HttpClient& client, std::string_view plan) {
    Headers headers = bearer(admin);
    headers.emplace_back("X-CSRF-Token", fetch_csrf_token(client, admin));
    return client.post("/billing/plan/select",
                       json::serialize(json::object{{"plan_type", plan}, {"id", hospital}}),
                       headers);
  }
  std::string current_plan_type(HttpClient& client) {
    const auto response = client.get("/billing/plan/current?entity_id=" + hospital, bearer(admin));
    EXPECT_EQ(response.status, 200) << response.body;
    return text(response.json().at("plan_type"));
  }
  // GETs as the hospital through nginx until one is refused; how many got through.
  int use_up_through_nginx(int most) {
    const auto token = sign_token(hospital_user(hospital));
    for (int i = 0; i < most; ++i) {
      const auto response = through_nginx.get("/csrf-token", bearer(token));
      if (response.status == 429) return i;
      EXPECT_EQ(response.status, 200) << response.body;
    }
    return most;
  }
  std::string signed_header(const std::string& payload) {
    return stripe_signature(payload, kSecret, unix_now());
  }
};

TEST_P(E2eReplicas, ShareOneRateLimitAndOnePlan) {
  EXPECT_EQ(use_up_through_nginx(200), 60);  // spread over both replicas, one bucket

  HttpClient to_first(first->port()), to_second(second->port());
  ASSERT_EQ(as_admin_select(to_first, "pro").status, 200);
  EXPECT_EQ(current_plan_type(to_second), "pro");  // the other replica sees it at once
  const auto token = sign_token(hospital_user(hospital));
  EXPECT_TRUE(eventually([&] { return to_second.get("/csrf-token", bearer(token)).status == 200; },
                         2s, 5ms));
  EXPECT_EQ(through_nginx.get("/csrf-token", bearer(token)).header("x-ratelimit-limit"), "300");
}

TEST_P(E2eReplicas, AWebhookEventDeliveredToBothAtOnceIsAppliedOnce) {
  const auto customer = unique_id("cus"), subscription = unique_id("sub");
  const auto checkout = stripe_checkout_completed(hospital, customer, subscription);
  const auto paid = stripe_event("invoice.payment_succeeded", {{"id", unique_id("in")},
                                                               {"customer", customer},
                                                               {"subscription", subscription},
                                                               {"amount_paid", 99900},
                                                               {"currency", "usd"}});
  constexpr int kCopies = 8;  // each replica gets four, all let go together
  for (const auto& payload : {checkout, paid}) {
    const auto signature = signed_header(payload);
    std::latch go(kCopies);
    std::vector<int> statuses(kCopies);
    std::vector<std::thread> senders;
    for (int i = 0; i < kCopies; ++i)
      senders.emplace_back([&, i] {
        HttpClient client(i % 2 ? first->port() : second->port());
        go.arrive_and_wait();
        statuses[i] =
            client
                .post("/stripe/webhook", payload,
                      {{"Content-Type", "application/json"}, {"Stripe-Signature", signature}})
                .status;
      });
    for (auto& t : senders) t.join();
    for (int status : statuses) EXPECT_EQ(status, 200);
  }
  auto db = open_server_db(*first);
  const auto payments = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PaymentRepo>().payments({EntityKind::hospital, hospital});
  }));
  ASSERT_EQ(payments.size(), 1u);
  EXPECT_EQ(payments[0].amount, 99900);
  HttpClient to_second(second->port());
  EXPECT_EQ(current_plan_type(to_second), "pro");
}

TEST_P(E2eReplicas, AReplicaKilledMidLoadCostsOnlyItsRequestsInFlight) {
  // The hospital's first request makes its entity; an admin then picks its plan.
  EXPECT_EQ(through_nginx.get("/csrf-token", bearer(sign_token(hospital_user(hospital)))).status,
            200);
  ASSERT_EQ(as_admin_select(through_nginx, "lite").status, 200);
  constexpr int kClients = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&] {
      HttpClient client(nginx.port());
      while (!stop) {
        try {
          const auto r = client.get("/billing/plan/current?entity_id=" + hospital, bearer(admin));
          (r.status == 200 ? ok : failed)++;
        } catch (const std::exception&) {
          failed++;
        }
      }
    });
  std::this_thread::sleep_for(500ms);
  first->signal(SIGKILL);
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 100);
  EXPECT_LE(failed.load(), kClients) << "more failures than requests in flight on the dead one";
  EXPECT_EQ(through_nginx.get("/billing/plan/current?entity_id=" + hospital, bearer(admin)).status,
            200);
}

TEST_P(E2eReplicas, RedisStoppedAndStartedAgainChangesNothingAClientSees) {
  const auto token = sign_token(hospital_user(hospital));
  EXPECT_EQ(through_nginx.get("/csrf-token", bearer(token)).status, 200);
  redis.stop();
  for (int i = 0; i < 20; ++i) {
    const auto response = through_nginx.get("/csrf-token", bearer(token));
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(response.header("x-ratelimit-limit"), "60");
  }
  redis.start();
  ASSERT_TRUE(first->wait_for_log("answers again, counting there", 10s));
  ASSERT_TRUE(second->wait_for_log("answers again, counting there", 10s));
  // Shared again: one bucket across both replicas (Redis started empty).
  EXPECT_EQ(use_up_through_nginx(200), 60) << first->log() << "\n---\n" << second->log();
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eReplicas, ::testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
