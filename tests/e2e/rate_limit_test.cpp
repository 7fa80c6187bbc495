// Plan rate limits through HTTP: each hospital or individual gets its plan's requests a minute,
// shared by its users (assistants count against their hospital), in this process or, with
// REDIS_URL, in Redis shared by every replica; a plan change applies on the next request; Redis
// stopped and started again while the service keeps answering.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "tests/e2e/client.hpp"
#include "tests/e2e/private_redis.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;

// GETs /csrf-token (any role, no storage) as `who` until one is refused or `most` were sent;
// returns how many got through.
int use_up(HttpClient& client, const Identity& who, int most) {
  const auto token = sign_token(who);
  for (int i = 0; i < most; ++i) {
    const auto response = client.get("/csrf-token", bearer(token));
    if (response.status == 429) return i;
    EXPECT_EQ(response.status, 200) << response.body;
  }
  return most;
}

void select_plan_as_admin(HttpClient& client, const std::string& hospital, std::string_view plan) {
  const auto admin = sign_token(admin_user());
  Headers headers = bearer(admin);
  headers.emplace_back("X-CSRF-Token", fetch_csrf_token(client, admin));
  const auto response =
      client.post("/billing/plan/select",
                  json::serialize(json::object{{"plan_type", plan}, {"id", hospital}}), headers);
  ASSERT_EQ(response.status, 200) << response.body;
}

class E2eRateLimit : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<BillingServer> server = BillingServer::for_backend(GetParam());
  HttpClient client{server->port()};
  const std::string hospital = unique_id("hosp");
};

TEST_P(E2eRateLimit, EveryLimitedResponseSaysWhereTheCallerStands) {
  const auto token = sign_token(hospital_user(hospital));
  for (int i = 0; i < 60; ++i) {
    const auto response = client.get("/csrf-token", bearer(token));
    ASSERT_EQ(response.status, 200) << i << ": " << response.body;
    EXPECT_EQ(response.header("x-ratelimit-limit"), "60");  // no plan: the lowest hospital limit
    EXPECT_EQ(response.header("x-ratelimit-remaining"), std::to_string(59 - i));
    EXPECT_EQ(response.header("x-ratelimit-reset"), std::to_string(i + 1));  // seconds to full
  }
  const auto refused = client.get("/csrf-token", bearer(token));
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.detail_text(), "Rate limit exceeded");
  EXPECT_EQ(refused.header("retry-after"), "1");  // one request a second comes back
  EXPECT_EQ(refused.header("x-ratelimit-limit"), "60");
  EXPECT_EQ(refused.header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(refused.header("x-ratelimit-reset"), "60");

  // Its assistants share the hospital's limit; another hospital and admins are not affected.
  EXPECT_EQ(
      client.get("/csrf-token", bearer(sign_token(assistant_user(unique_id("asst"), hospital))))
          .status,
      429);
  EXPECT_EQ(client.get("/csrf-token", bearer(sign_token(hospital_user(unique_id("hosp")))))
                .header("x-ratelimit-remaining"),
            "59");
  const auto admin = client.get("/csrf-token", bearer(sign_token(admin_user())));
  EXPECT_EQ(admin.status, 200);
  EXPECT_EQ(admin.header("x-ratelimit-limit"), "");
  EXPECT_EQ(client.get("/health").header("x-ratelimit-limit"), "");
  EXPECT_TRUE(server->wait_for_log("rate limit exceeded", 5s));
}

TEST_P(E2eRateLimit, IndividualsGetTheirRolesLowestLimit) {
  EXPECT_EQ(use_up(client, individual_user(unique_id("ind")), 100), 30);
}

TEST_P(E2eRateLimit, APlanChangeAppliesOnTheNextRequest) {
  EXPECT_EQ(use_up(client, hospital_user(hospital), 100), 60);
  select_plan_as_admin(client, hospital, "pro");  // admins pick active plans
  const auto token = sign_token(hospital_user(hospital));
  const auto response = client.get("/csrf-token", bearer(token));
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.header("x-ratelimit-limit"), "300");
  EXPECT_EQ(response.header("x-ratelimit-remaining"), "299");
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eRateLimit, ::testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

// Two servers on one database and one Redis, as two replicas behind a load balancer.
class E2eSharedRateLimit : public ::testing::Test {
 protected:
  PrivateRedis redis;
  std::unique_ptr<BillingServer> first =
      std::make_unique<BillingServer>(BillingServer::Options{.env = {{"REDIS_URL", redis.url()}}});
  std::unique_ptr<BillingServer> second = std::make_unique<BillingServer>(BillingServer::Options{
      .database_url = first->database_url(), .env = {{"REDIS_URL", redis.url()}}});
  HttpClient to_first{first->port()};
  HttpClient to_second{second->port()};
  const std::string hospital = unique_id("hosp");
};

TEST_F(E2eSharedRateLimit, ReplicasShareOneBucket) {
  EXPECT_EQ(use_up(to_first, hospital_user(hospital), 30), 30);
  EXPECT_EQ(use_up(to_second, hospital_user(hospital), 100), 30);
  EXPECT_EQ(to_first.get("/csrf-token", bearer(sign_token(hospital_user(hospital)))).status, 429);
}

TEST_F(E2eSharedRateLimit, APlanChangedThroughOneReplicaAppliesOnTheOther) {
  EXPECT_EQ(use_up(to_second, hospital_user(hospital), 100), 60);
  select_plan_as_admin(to_first, hospital, "pro");
  const auto token = sign_token(hospital_user(hospital));
  // The announcement crosses Redis in well under a millisecond; allow a moment for the hop.
  EXPECT_TRUE(eventually([&] { return to_second.get("/csrf-token", bearer(token)).status == 200; },
                         2s, 5ms));
  EXPECT_EQ(to_second.get("/csrf-token", bearer(token)).header("x-ratelimit-limit"), "300");
}

TEST_F(E2eSharedRateLimit, KeepsAnsweringWhileRedisIsAwayAndCountsThereAgainWhenItReturns) {
  const auto individual = unique_id("ind");
  const auto token = sign_token(individual_user(individual));
  EXPECT_EQ(use_up(to_first, individual_user(individual), 100), 30);
  EXPECT_NE(redis.cli({"KEYS", "billing:ratelimit:*"}).find(individual), std::string::npos);

  redis.stop();
  for (int i = 0; i < 10; ++i) {
    // Counted in the process now (a bucket of its own, full): answered, never a 5xx.
    const auto response = to_first.get("/csrf-token", bearer(token));
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(response.header("x-ratelimit-limit"), "30");
  }
  EXPECT_TRUE(first->wait_for_log("Redis at", 5s));
  const auto log = first->log();
  std::size_t said = 0;
  for (auto at = log.find("unreachable"); at != std::string::npos;
       at = log.find("unreachable", at + 1))
    ++said;
  EXPECT_EQ(said, 1u) << "said once:\n" << log;

  redis.start();
  EXPECT_TRUE(first->wait_for_log("answers again, counting there", 10s)) << first->log();
  EXPECT_EQ(to_first.get("/csrf-token", bearer(token)).status, 200);
  EXPECT_NE(redis.cli({"KEYS", "billing:ratelimit:*"}).find(individual), std::string::npos)
      << "counting in Redis again\n"
      << first->log();
}

}  // namespace
}  // namespace billing::e2e
