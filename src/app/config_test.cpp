#include "app/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace billing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Environment env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

const std::map<std::string, std::string> kMinimal{{"JWT_SECRET_KEY", "j"},
                                                  {"CSRF_SECRET_KEY", "c"}};

std::string error_with(std::map<std::string, std::string> extra, bool dev = false) {
  auto values = kMinimal;
  for (auto& [k, v] : extra) values[k] = v;
  try {
    load_config(env_of(values), dev);
    return "accepted";
  } catch (const ConfigError& e) {
    return e.what();
  }
}

TEST(Config, DefaultsAreTheEmbeddedOnes) {
  const auto c = load_config(env_of(kMinimal), false);
  EXPECT_EQ(c.database_url, "sqlite:///billing.db");
  EXPECT_EQ(c.sqlite_path(), "billing.db");
  EXPECT_EQ(c.port, 8000);
  EXPECT_EQ(c.payments, PaymentsProvider::local);
  EXPECT_EQ(c.local_payments_account, "local");
  EXPECT_EQ(c.stripe.api_version, "2023-10-16");
  EXPECT_EQ(c.stripe.api_base, "https://api.stripe.com");
  EXPECT_EQ(c.jwt_expiry, std::chrono::minutes(30));
}

TEST(Config, TakesTheLogLevelsOtherToolsSpell) {
  for (const auto& [given, level] :
       std::vector<std::pair<std::string, std::string>>{{"warning", "warn"},
                                                        {"WARNING", "warn"},
                                                        {"warn", "warn"},
                                                        {"INFO", "info"},
                                                        {"Debug", "debug"},
                                                        {"critical", "critical"},
                                                        {"fatal", "critical"},
                                                        {"error", "error"},
                                                        {"trace", "trace"}}) {
    auto values = kMinimal;
    values.insert({"LOG_LEVEL", given});
    EXPECT_EQ(load_config(env_of(values), false).log_level, level) << given;
  }
}

TEST(Config, ReadsTheOperationsVariables) {
  const auto defaults = load_config(env_of(kMinimal), false);
  EXPECT_EQ(defaults.log_format, LogFormat::json);
  EXPECT_EQ(defaults.metrics_token, "");
  EXPECT_EQ(defaults.metrics_port, std::nullopt);
  auto values = kMinimal;
  values.insert(
      {{"LOG_FORMAT", "text"}, {"METRICS_TOKEN", "0123456789abcdef-token"}, {"METRICS_PORT", "0"}});
  const auto c = load_config(env_of(values), false);
  EXPECT_EQ(c.log_format, LogFormat::text);
  EXPECT_EQ(c.metrics_token, "0123456789abcdef-token");
  EXPECT_EQ(c.metrics_port, 0);
}

TEST(Config, RateLimitsAreOnUnlessTurnedOff) {
  EXPECT_TRUE(load_config(env_of(kMinimal), false).rate_limits);
  auto values = kMinimal;
  values.insert({{"RATE_LIMITS", "off"}, {"REDIS_URL", "unix:///run/redis/redis.sock"}});
  const auto c = load_config(env_of(values), false);
  EXPECT_FALSE(c.rate_limits);
  EXPECT_EQ(c.redis_url, "unix:///run/redis/redis.sock");
}

// Where the database is, as libpq reads the URL, never its password: also one that holds `#`,
// `?` or `:` unencoded, which libpq takes as part of the password.
TEST(Config, ShowsTheDatabaseWithoutAPassword) {
  const auto shown = [](std::string url) {
    Config c;
    c.database_url = std::move(url);
    return c.database_shown();
  };
  EXPECT_EQ(shown("sqlite:///billing.db"), "SQLite sqlite:///billing.db");
  EXPECT_EQ(shown("postgresql://u:secret@db.internal:5433/billing?sslmode=require"),
            "PostgreSQL u@db.internal:5433/billing");
  EXPECT_EQ(shown("postgresql://u@localhost/db?password=secret"), "PostgreSQL u@localhost/db");
  for (const auto* url : {"postgresql://billing:p#ss@db/billing", "postgresql://u:12?34@db/billing",
                          "postgresql://u:a:b@db/billing"}) {
    const auto text = shown(url);
    EXPECT_EQ(text.find("ss@"), std::string::npos) << url << " -> " << text;
    EXPECT_EQ(text.find("34"), std::string::npos) << url << " -> " << text;
    EXPECT_EQ(text.find(":b"), std::string::npos) << url << " -> " << text;
    EXPECT_TRUE(text.starts_with("PostgreSQL")) << text;
  }
  EXPECT_EQ(shown("postgresql://%zz"), "PostgreSQL");  // libpq cannot read it
}

TEST(Config, ReadsTheSeedsVariables) {
  auto values = kMinimal;
  values.insert({{"DATABASE_URL", "postgresql://u@localhost/db"},
                 {"STRIPE_SECRET_KEY", "sk_test_1"},
                 {"STRIPE_WEBHOOK_SECRET", "whsec_1"},
                 {"STRIPE_SUCCESS_URL", "https://example.com/paid"},
                 {"STRIPE_CANCEL_URL", "https://example.com/cancelled"},
                 {"PRICE_IND_PRO_YEARLY", "price_9"},
                 {"JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "15"},
                 {"PORT", "9001"},
                 {"REDIS_URL", "redis://127.0.0.1:6379"}});
  const auto c = load_config(env_of(values), false);
  EXPECT_EQ(c.sqlite_path(), std::nullopt);
  EXPECT_EQ(c.payments, PaymentsProvider::stripe);
  // --dev pays locally whatever key the shell holds, unless told otherwise.
  EXPECT_EQ(load_config(env_of(values), true).payments, PaymentsProvider::local);
  values.insert({"PAYMENTS_PROVIDER", "stripe"});
  EXPECT_EQ(load_config(env_of(values), true).payments, PaymentsProvider::stripe);
  EXPECT_EQ(c.stripe.prices[7], "price_9");
  EXPECT_EQ(c.jwt_expiry, std::chrono::minutes(15));
  EXPECT_EQ(c.port, 9001);
  EXPECT_EQ(c.redis_url, "redis://127.0.0.1:6379");
  EXPECT_EQ(load_config(env_of({{"DATABASE_URL", "sqlite:////tmp/x.db"}}), true).sqlite_path(),
            "/tmp/x.db");
}

TEST(Config, EveryBadValueNamesItsVariable) {
  EXPECT_THAT(error_with({{"JWT_SECRET_KEY", ""}}), HasSubstr("JWT_SECRET_KEY is not set"));
  EXPECT_THAT(error_with({{"CSRF_SECRET_KEY", ""}}), HasSubstr("CSRF_SECRET_KEY is not set"));
  EXPECT_EQ(error_with({{"JWT_SECRET_KEY", ""}, {"CSRF_SECRET_KEY", ""}}, true), "accepted");
  const std::pair<std::map<std::string, std::string>, const char*> cases[] = {
      {{{"JWT_ALGORITHM", "RS256"}}, "JWT_ALGORITHM"},
      {{{"JWT_ALGORITHM", "none"}}, "JWT_ALGORITHM"},
      {{{"JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "abc"}}, "JWT_ACCESS_TOKEN_EXPIRE_MINUTES"},
      {{{"JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "0"}}, "JWT_ACCESS_TOKEN_EXPIRE_MINUTES"},
      {{{"PORT", "70000"}}, "PORT"},
      {{{"PORT", "80x"}}, "PORT"},
      {{{"HOST", "not an address"}}, "HOST"},
      {{{"DATABASE_URL", "mysql://x"}}, "DATABASE_URL"},
      {{{"DATABASE_URL", "sqlite:///"}}, "DATABASE_URL"},
      {{{"MONGODB_URL", "mongodb://localhost"}},
       "MONGODB_URL is set, but MongoDB is not supported"},
      {{{"PAYMENTS_PROVIDER", "paypal"}}, "PAYMENTS_PROVIDER"},
      {{{"PAYMENTS_PROVIDER", "stripe"}}, "STRIPE_SECRET_KEY"},
      {{{"STRIPE_SECRET_KEY", "sk_test_1"}}, "STRIPE_WEBHOOK_SECRET"},
      {{{"STRIPE_SECRET_KEY", "sk_test_1"}, {"STRIPE_WEBHOOK_SECRET", "whsec_1"}},
       "STRIPE_SUCCESS_URL"},
      {{{"STRIPE_API_BASE", "ftp://x"}}, "STRIPE_API_BASE"},
      {{{"STRIPE_SUCCESS_URL", "nope"}}, "STRIPE_SUCCESS_URL"},
      {{{"STRIPE_API_VERSION", ""}}, "STRIPE_API_VERSION"},
      {{{"STRIPE_API_VERSION", "garbage"}}, "STRIPE_API_VERSION must be a Stripe API version"},
      {{{"STRIPE_API_VERSION", "2023-10-16\r\nX-Evil: 1"}}, "STRIPE_API_VERSION must be printable"},
      // A secrets file's trailing newline would end the Authorization header early; the message
      // does not repeat the value.
      {{{"STRIPE_SECRET_KEY", "sk_test_abc\n"}}, "STRIPE_SECRET_KEY must be printable ASCII"},
      {{{"STRIPE_SECRET_KEY", "hello world"}}, "STRIPE_SECRET_KEY must be printable ASCII"},
      {{{"STRIPE_WEBHOOK_SECRET", "whsec_x\n"}}, "STRIPE_WEBHOOK_SECRET must be printable"},
      {{{"STRIPE_PUBLISHABLE_KEY", "pk_\t"}}, "STRIPE_PUBLISHABLE_KEY must be printable"},
      {{{"PRICE_HOSP_LITE_MONTHLY", "price_1 "}}, "PRICE_HOSP_LITE_MONTHLY must be printable"},
      {{{"LOCAL_PAYMENTS_ACCOUNT", ""}}, "LOCAL_PAYMENTS_ACCOUNT"},
      {{{"LOCAL_PAYMENTS_ACCOUNT", "a b"}}, "LOCAL_PAYMENTS_ACCOUNT"},
      {{{"LOCAL_PAYMENTS_ACCOUNT", std::string(65, 'a')}}, "LOCAL_PAYMENTS_ACCOUNT"},
      {{{"REDIS_URL", "http://x"}}, "REDIS_URL"},
      {{{"REDIS_URL", "redis://h:99999"}}, "REDIS_URL"},
      {{{"REDIS_URL", "redis://h/x"}}, "REDIS_URL"},
      {{{"REDIS_URL", "unix://"}}, "REDIS_URL"},
      {{{"RATE_LIMITS", "no"}}, "RATE_LIMITS"},
      {{{"LOG_LEVEL", "loud"}}, "LOG_LEVEL"},
      {{{"HTTP_THREADS", "0"}}, "HTTP_THREADS"},
      {{{"DATABASE_POOL_SIZE", "-1"}}, "DATABASE_POOL_SIZE"},
      {{{"LOG_FORMAT", "xml"}}, "LOG_FORMAT"},
      {{{"METRICS_TOKEN", "short"}}, "METRICS_TOKEN"},
      {{{"METRICS_TOKEN", "sixteen chars or more"}}, "METRICS_TOKEN"},
      {{{"METRICS_PORT", "x"}}, "METRICS_PORT"},
      {{{"METRICS_PORT", "8000"}}, "METRICS_PORT must differ from PORT"},
      {{{"PUBLIC_URL", "billing.example.com"}}, "PUBLIC_URL must be an http(s) URL"},
      {{{"PUBLIC_URL", "https://u:p@billing.example.com"}}, "PUBLIC_URL must be http(s)://host"},
      {{{"PUBLIC_URL", "https://billing.example.com/?a=1"}}, "PUBLIC_URL must be http(s)://host"},
      {{{"PUBLIC_URL", "https://example.com/billing"}}, "PUBLIC_URL must be http(s)://host"},
      // A price of two of a role's offers would not tell which plan a subscription pays for.
      {{{"PRICE_HOSP_LITE_MONTHLY", "price_1"}, {"PRICE_HOSP_PRO_YEARLY", "price_1"}},
       "PRICE_HOSP_PRO_YEARLY must differ from PRICE_HOSP_LITE_MONTHLY"},
      {{{"PRICE_IND_LITE_YEARLY", "price_2"}, {"PRICE_IND_PRO_YEARLY", "price_2"}},
       "PRICE_IND_PRO_YEARLY must differ from PRICE_IND_LITE_YEARLY"},
  };
  for (const auto& [extra, name] : cases) EXPECT_THAT(error_with(extra), HasSubstr(name));
  EXPECT_EQ(error_with({{"MONGODB_URL", "mongodb://x"}, {"DATABASE_URL", "sqlite:///a.db"}}),
            "accepted");
  EXPECT_EQ(error_with({{"STRIPE_API_VERSION", "2024-09-30.acacia"}}), "accepted");
  EXPECT_THAT(error_with({{"STRIPE_SECRET_KEY", "sk_test_secret\n"}}),
              Not(HasSubstr("sk_test_secret")));
  EXPECT_EQ(error_with({{"LOCAL_PAYMENTS_ACCOUNT", "staging_2-eu"}}), "accepted");
  // Hospitals and individuals may pay through one price.
  EXPECT_EQ(
      error_with({{"PRICE_HOSP_LITE_MONTHLY", "price_1"}, {"PRICE_IND_LITE_MONTHLY", "price_1"}}),
      "accepted");
}

// The local provider's links: PUBLIC_URL where browsers reach the service, else where it listens,
// an address of every interface as this machine's loopback.
TEST(Config, LinksForClientsUsePublicUrlElseAnAddressABrowserCanOpen) {
  auto at = [](std::string host, std::string public_url = "") {
    auto values = kMinimal;
    values["HOST"] = std::move(host);
    if (!public_url.empty()) values["PUBLIC_URL"] = std::move(public_url);
    return load_config(env_of(values), false).url_for_clients(8123);
  };
  EXPECT_EQ(at("127.0.0.1"), "http://127.0.0.1:8123");
  EXPECT_EQ(at("0.0.0.0"), "http://127.0.0.1:8123");
  EXPECT_EQ(at("::"), "http://[::1]:8123");
  EXPECT_EQ(at("192.0.2.7"), "http://192.0.2.7:8123");
  EXPECT_EQ(at("0.0.0.0", "https://billing.example.com/"), "https://billing.example.com");
  EXPECT_EQ(at("0.0.0.0", "http://[2001:db8::7]:8443"), "http://[2001:db8::7]:8443");
}

}  // namespace
}  // namespace billing
