// The executable itself: its commands, the configuration checks at start, and `serve --dev`.
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/jwt.hpp"
#include "payments/webhook_signature.hpp"
#include "storage/sqlite/connection.hpp"
#include "tests/e2e/client.hpp"

namespace billing::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const Env kSecrets{{"JWT_SECRET_KEY", std::string(kJwtSecret)},
                   {"CSRF_SECRET_KEY", std::string(kCsrfSecret)}};

Env with(Env env, const Env& extra) {
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// `serve` must refuse to start, exit 2, and say why, naming the culprit.
struct StartFailure {
  const char* name;
  Env env;  // "{dir}" in a value stands for the test's own temporary directory
  const char* says;
  // Written into that directory before the start (name, contents): no test writes a path that
  // another test process, run in parallel by ctest, could read or truncate.
  std::vector<std::pair<std::string, std::string>> files = {};
  int code = 2;  // 2 for what the configuration says, 1 for what it names and fails
};
void PrintTo(const StartFailure& c, std::ostream* os) {
  *os << c.name;
}

// `env` with every "{dir}" in its values replaced by `dir`.
Env in_dir(Env env, const std::string& dir) {
  static constexpr std::string_view kDir = "{dir}";
  for (auto& variable : env) {
    std::string& value = variable.second;
    for (auto at = value.find(kDir); at != std::string::npos; at = value.find(kDir, at)) {
      value.replace(at, kDir.size(), dir);
      at += dir.size();
    }
  }
  return env;
}

class E2eCliStart : public ::testing::TestWithParam<StartFailure> {};

TEST_P(E2eCliStart, RefusesWithAClearMessage) {
  const TempDir dir;
  for (const auto& [name, contents] : GetParam().files) {
    std::ofstream file(dir.path() + "/" + name);
    file << contents;
    file.close();
    ASSERT_TRUE(file) << "cannot write " << dir.path() << "/" << name;
  }
  const auto result = run_billing({"serve", "--port", "0"}, in_dir(GetParam().env, dir.path()));
  EXPECT_EQ(result.code, GetParam().code) << result.output;
  EXPECT_THAT(result.output, HasSubstr(GetParam().says));
}

INSTANTIATE_TEST_SUITE_P(
    E2e, E2eCliStart,
    ::testing::Values(
        StartFailure{"no_jwt_secret", {{"CSRF_SECRET_KEY", "c"}}, "JWT_SECRET_KEY is not set"},
        StartFailure{"no_csrf_secret", {{"JWT_SECRET_KEY", "j"}}, "CSRF_SECRET_KEY is not set"},
        StartFailure{"rs256", with(kSecrets, {{"JWT_ALGORITHM", "RS256"}}), "JWT_ALGORITHM"},
        StartFailure{"mongodb", with(kSecrets, {{"MONGODB_URL", "mongodb://localhost:27017/db"}}),
                     "MongoDB is not supported"},
        StartFailure{"bad_database_url", with(kSecrets, {{"DATABASE_URL", "mysql://x"}}),
                     "DATABASE_URL"},
        StartFailure{"bad_port", with(kSecrets, {{"PORT", "http"}}), "PORT"},
        StartFailure{"missing_catalog", with(kSecrets, {{"PLANS_CONFIG", "/nonexistent.json"}}),
                     "plan catalog (PLANS_CONFIG) error: cannot read /nonexistent.json"},
        StartFailure{"database_in_no_directory",
                     with(kSecrets, {{"DATABASE_URL", "sqlite:///{dir}/nodir/billing.db"}}),
                     "database (DATABASE_URL): cannot open SQLite database",
                     {},
                     1},
        StartFailure{"database_not_sqlite",
                     with(kSecrets, {{"DATABASE_URL", "sqlite:///{dir}/billing.db"}}),
                     "database (DATABASE_URL): ",
                     {{"billing.db", std::string(4096, 'x')}},
                     1},
        StartFailure{"broken_catalog",
                     with(kSecrets, {{"PLANS_CONFIG", "{dir}/plans.json"}}),
                     "no description for service",
                     {{"plans.json", R"({"services": [], "plans": []})"}}}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(E2eCli, TokenPrintsAJwtSignedWithTheSecret) {
  const auto result = run_billing(
      {"token", "--role", "assistant", "--entity", "asst-1", "--hospital", "hosp-1"}, kSecrets);
  ASSERT_EQ(result.code, 0) << result.output;
  SystemClock clock;
  const auto identity =
      JwtCodec(kJwtSecret, clock).verify(result.output.substr(0, result.output.find('\n')));
  EXPECT_EQ(identity.role, Role::assistant);
  EXPECT_EQ(identity.entity_id, "asst-1");
  EXPECT_EQ(identity.hospital_id, "hosp-1");

  const auto refused = run_billing({"token", "--role", "assistant", "--entity", "a"}, kSecrets);
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.output, HasSubstr("--hospital is required"));
  EXPECT_NE(run_billing({"token", "--role", "owner", "--entity", "a"}, kSecrets).code, 0);
  // Ids the service would refuse in a token are refused here, not printed.
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--role", "hospital", "--entity", ""}, "--entity must not be empty"},
           {{"--role", "hospital", "--entity", std::string(129, 'h')}, "--entity must be 1-128"},
           {{"--role", "assistant", "--entity", "a", "--hospital", std::string(129, 'h')},
            "--hospital must be 1-128"},
           {{"--role", "admin", "--entity", "a", "--sub", "x\ty"}, "--sub must be 1-128"}}) {
    std::vector<std::string> command{"token"};
    command.insert(command.end(), args.begin(), args.end());
    const auto bad = run_billing(command, kSecrets);
    EXPECT_EQ(bad.code, 2) << message;
    EXPECT_THAT(bad.output, HasSubstr(message));
  }
  const auto defaulted =
      run_billing({"token", "--role", "hospital", "--entity", std::string(124, 'h')}, kSecrets);
  EXPECT_EQ(defaulted.code, 2);
  EXPECT_THAT(defaulted.output, HasSubstr("--sub (by default user-<entity>) must be 1-128"));
  const auto longest = run_billing(
      {"token", "--role", "hospital", "--entity", std::string(128, 'h'), "--sub", "u"}, kSecrets);
  ASSERT_EQ(longest.code, 0) << longest.output;
  EXPECT_EQ(JwtCodec(kJwtSecret, clock)
                .verify(longest.output.substr(0, longest.output.find('\n')))
                .entity_id,
            std::string(128, 'h'));
}

TEST(E2eCli, MigrateAppliesTheSchemaAndIsRepeatable) {
  TempDir dir;
  const auto env = with(kSecrets, {{"DATABASE_URL", "sqlite:///" + dir.path() + "/billing.db"}});
  ASSERT_EQ(run_billing({"migrate"}, env).code, 0);
  const auto again = run_billing({"migrate"}, env);
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/billing.db"));
  EXPECT_THAT(again.output, Not(HasSubstr("newer build")));

  // Migrated by a newer build: this one goes on, and says so.
  SqliteConnection(dir.path() + "/billing.db", SqliteConnection::Mode::read_write)
      .exec("INSERT INTO schema_migrations (version, name) VALUES (999, '999_future.sql')");
  const auto older = run_billing({"migrate"}, env);
  EXPECT_EQ(older.code, 0) << older.output;
  EXPECT_THAT(older.output, HasSubstr("the database was migrated by a newer build"));
  EXPECT_THAT(older.output, HasSubstr("999 999_future.sql"));
}

TEST(E2eCli, DevServesDemoDataWithGeneratedSecretsAndPrintsTokens) {
  BillingServer server({.dev = true});
  ASSERT_TRUE(server.wait_for_log("Stop with Ctrl-C", 10s)) << server.log();
  const std::string log = server.log();
  EXPECT_THAT(log, HasSubstr("curl -s"));
  EXPECT_THAT(log, HasSubstr("(SQLite sqlite:///billing.db, local payments)"));
  EXPECT_THAT(log, HasSubstr("/stripe/portal-link"));
  EXPECT_THAT(log, HasSubstr(R"("billing_cycle":"yearly"}' http://)"));
  // The monthly renewal comes before the switch to yearly, which would put it a year off.
  EXPECT_LT(log.find("/stripe/local/clock/advance"), log.find(R"("billing_cycle":"yearly")"));
  EXPECT_THAT(log, HasSubstr(R"(date them after the clock's "now")"));
  const auto token_of = [&](std::string_view name) {
    const auto at = log.find(std::string(name) + "=");
    return log.substr(at + name.size() + 1, log.find('\n', at) - at - name.size() - 1);
  };

  HttpClient client(server.port());
  const auto plan = client.get("/billing/plan/current?entity_id=demo-hospital-1",
                               {{"Authorization", "Bearer " + token_of("ADMIN")}});
  EXPECT_EQ(plan.status, 200) << plan.body;
  EXPECT_EQ(text(plan.json().at("status")), "active");
  const auto services =
      client.get("/billing/services", {{"Authorization", "Bearer " + token_of("ASSISTANT")}});
  EXPECT_EQ(services.status, 200) << services.body;
  EXPECT_EQ(text(services.json().at("plan_type")), "lite");

  // Its webhook secret is printed: an event made up by hand and signed with it is applied.
  const auto webhook_secret = token_of("WEBHOOK_SECRET");
  EXPECT_THAT(webhook_secret, ::testing::StartsWith("whsec_"));
  const std::string event =
      R"({"id":"evt_by_hand","object":"event","type":"customer.created","created":1700000000,)"
      R"("data":{"object":{"id":"cus_by_hand","object":"customer"}}})";
  const auto signed_event = client.post(
      "/stripe/webhook", event,
      {{"Stripe-Signature",
        WebhookSignature(webhook_secret).sign(event, std::chrono::system_clock::now())}});
  EXPECT_EQ(signed_event.status, 200) << signed_event.body;
  const auto unsigned_event = client.post(
      "/stripe/webhook", event,
      {{"Stripe-Signature",
        WebhookSignature("whsec_other").sign(event, std::chrono::system_clock::now())}});
  EXPECT_EQ(unsigned_event.status, 400);

  const auto secrets = server.directory() + "/billing-dev-secrets.json";
  struct stat info {};
  ASSERT_EQ(stat(secrets.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_TRUE(std::filesystem::exists(server.directory() + "/billing.db"));

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(10s), 0);
}

}  // namespace
}  // namespace billing::e2e
