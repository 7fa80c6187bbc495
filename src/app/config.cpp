#include "app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include "kit/text.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/redis/rate_counters.hpp"

namespace billing {
namespace {

[[noreturn]] void bad(const char* name, std::string_view why) {
  throw ConfigError(fmt::format("{} {}", name, why));
}

template <class Number>
Number number(const Environment& env, const char* name, Number fallback, Number min, Number max) {
  const auto text = env(name);
  if (!text) return fallback;
  Number value{};
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc{} || end != text->data() + text->size() || value < min || value > max)
    bad(name, fmt::format("must be a whole number from {} to {} (got \"{}\")", min, max, *text));
  return value;
}

std::string url(const Environment& env, const char* name, std::string fallback) {
  auto text = env(name).value_or(std::move(fallback));
  if (text.empty()) return text;
  const auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https"))
    bad(name, fmt::format("must be an http(s) URL (got \"{}\")", text));
  return text;
}

// A key, secret, id or version, which goes into Stripe's headers and forms: printable ASCII
// without spaces. A trailing newline (a secrets file's) would end the Authorization header early.
// The value is not repeated: it may be a secret.
std::string word(const Environment& env, const char* name, std::string fallback) {
  auto text = env(name).value_or(std::move(fallback));
  if (std::any_of(text.begin(), text.end(), [](char c) { return c <= ' ' || c > '~'; }))
    bad(name, "must be printable ASCII without spaces or control characters (a trailing newline?)");
  return text;
}

std::string default_plans_config() {
  if (std::filesystem::exists("config/plans.json")) return "config/plans.json";
  return BILLING_SOURCE_DIR "/config/plans.json";  // running from a build directory
}

}  // namespace

std::optional<std::string> Config::sqlite_path() const {
  constexpr std::string_view prefix = "sqlite:///";
  if (!database_url.starts_with(prefix)) return std::nullopt;
  return database_url.substr(prefix.size());
}

std::string Config::database_shown() const {
  if (sqlite_path()) return "SQLite " + database_url;
  const auto destination = postgres_destination(database_url);
  return destination.empty() ? "PostgreSQL" : "PostgreSQL " + destination;
}

Environment process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

std::string Config::url_for_clients(unsigned short bound_port) const {
  if (!public_url.empty()) return public_url;
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(host, error);
  if (!error && address.is_unspecified())
    return http_url(address.is_v4() ? "127.0.0.1" : "::1", bound_port);
  return http_url(host, bound_port);
}

Config load_config(const Environment& env, bool dev) {
  Config c;
  c.host = env("HOST").value_or(c.host);
  boost::system::error_code ec;
  boost::asio::ip::make_address(c.host, ec);
  if (ec) bad("HOST", fmt::format("must be an IP address (got \"{}\")", c.host));
  c.port = number<unsigned short>(env, "PORT", c.port, 0, 65535);
  const auto cores = std::max(1u, std::thread::hardware_concurrency());
  c.http_threads = number<std::size_t>(env, "HTTP_THREADS", cores, 1, 256);
  c.header_timeout = std::chrono::milliseconds(
      number<long>(env, "HTTP_HEADER_TIMEOUT_MS", c.header_timeout.count(), 100, 600'000));

  const auto mongo = env("MONGODB_URL");
  const auto database = env("DATABASE_URL");
  if (mongo && !database)
    bad("MONGODB_URL",
        "is set, but MongoDB is not supported: set DATABASE_URL to "
        "sqlite:///path/to.db or postgresql://...");
  c.public_url = url(env, "PUBLIC_URL", "");
  if (!c.public_url.empty()) {
    const auto parsed = boost::urls::parse_absolute_uri(c.public_url);
    // No path: the local pages' forms post to paths from the root, which a proxy serving the
    // service under a prefix would not send on.
    if (parsed->has_userinfo() || parsed->has_query() || parsed->has_fragment() ||
        parsed->host().empty() || (!parsed->path().empty() && parsed->path() != "/"))
      bad("PUBLIC_URL",
          fmt::format("must be http(s)://host[:port], without user, path, query or fragment (got "
                      "\"{}\")",
                      c.public_url));
    if (c.public_url.ends_with('/')) c.public_url.pop_back();
  }
  c.database_url = database.value_or(c.database_url);
  const bool postgres =
      c.database_url.starts_with("postgresql://") || c.database_url.starts_with("postgres://");
  if (!postgres && (!c.sqlite_path() || c.sqlite_path()->empty()))
    bad("DATABASE_URL", fmt::format("must be sqlite:///path/to.db or postgresql://... (got \"{}\")",
                                    c.database_url));
  c.database_pool_size =
      number<std::size_t>(env, "DATABASE_POOL_SIZE", c.database_pool_size, 1, 64);
  c.plans_config = env("PLANS_CONFIG").value_or(default_plans_config());

  const auto algorithm = env("JWT_ALGORITHM").value_or("HS256");
  if (algorithm != "HS256")
    bad("JWT_ALGORITHM", fmt::format("must be HS256 (got \"{}\")", algorithm));
  c.jwt_secret = env("JWT_SECRET_KEY").value_or("");
  c.csrf_secret = env("CSRF_SECRET_KEY").value_or("");
  if (!dev && c.jwt_secret.empty()) bad("JWT_SECRET_KEY", "is not set");
  if (!dev && c.csrf_secret.empty()) bad("CSRF_SECRET_KEY", "is not set");
  c.jwt_expiry = std::chrono::minutes(
      number<long>(env, "JWT_ACCESS_TOKEN_EXPIRE_MINUTES", c.jwt_expiry.count(), 1, 60 * 24 * 365));
  c.csrf_expiry = std::chrono::minutes(
      number<long>(env, "CSRF_TOKEN_EXPIRE_MINUTES", c.csrf_expiry.count(), 1, 60 * 24));

  auto& s = c.stripe;
  s.secret_key = word(env, "STRIPE_SECRET_KEY", "");
  s.publishable_key = word(env, "STRIPE_PUBLISHABLE_KEY", "");
  s.webhook_secret = word(env, "STRIPE_WEBHOOK_SECRET", "");
  s.api_version = word(env, "STRIPE_API_VERSION", s.api_version);
  // Stripe's form: a date, and from 2024-09-30 on a release name ("2024-09-30.acacia").
  static const std::regex kApiVersion(R"(\d{4}-\d{2}-\d{2}(\.[a-z]+)?)");
  if (!std::regex_match(s.api_version, kApiVersion))
    bad("STRIPE_API_VERSION",
        fmt::format("must be a Stripe API version such as 2023-10-16 (got \"{}\")", s.api_version));
  s.api_base = url(env, "STRIPE_API_BASE", s.api_base);
  s.success_url = url(env, "STRIPE_SUCCESS_URL", "");
  s.cancel_url = url(env, "STRIPE_CANCEL_URL", "");
  for (std::size_t i = 0; i < kPriceVariables.size(); ++i) {
    s.prices[i] = word(env, kPriceVariables[i], "");
    // A role's four offers are four in a row; a price that two of them shared would not tell
    // which plan a subscription pays for. Hospitals and individuals may share one.
    for (std::size_t j = i - i % 4; j < i; ++j)
      if (!s.prices[i].empty() && s.prices[i] == s.prices[j])
        bad(kPriceVariables[i],
            fmt::format("must differ from {}: a price charges for one plan and cycle of a role",
                        kPriceVariables[j]));
  }

  // --dev pays locally even where a Stripe key is in the environment (a developer's shell);
  // PAYMENTS_PROVIDER=stripe says otherwise.
  const auto provider =
      env("PAYMENTS_PROVIDER").value_or(dev || s.secret_key.empty() ? "local" : "stripe");
  if (provider == "local") {
    c.payments = PaymentsProvider::local;
  } else if (provider == "stripe") {
    c.payments = PaymentsProvider::stripe;
    if (s.secret_key.empty()) bad("STRIPE_SECRET_KEY", "is not set (PAYMENTS_PROVIDER is stripe)");
    // Without it every webhook would be refused, and no payment would ever activate a plan.
    if (s.webhook_secret.empty())
      bad("STRIPE_WEBHOOK_SECRET", "is not set (PAYMENTS_PROVIDER is stripe)");
    // Stripe refuses a checkout session without them.
    if (s.success_url.empty())
      bad("STRIPE_SUCCESS_URL", "is not set (PAYMENTS_PROVIDER is stripe)");
    if (s.cancel_url.empty()) bad("STRIPE_CANCEL_URL", "is not set (PAYMENTS_PROVIDER is stripe)");
  } else {
    bad("PAYMENTS_PROVIDER", fmt::format("must be stripe or local (got \"{}\")", provider));
  }
  c.local_payments_account = env("LOCAL_PAYMENTS_ACCOUNT").value_or(c.local_payments_account);
  if (c.local_payments_account.empty() || c.local_payments_account.size() > 64 ||
      c.local_payments_account.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
          std::string::npos)
    bad("LOCAL_PAYMENTS_ACCOUNT", "must be 1-64 letters, digits, '_' or '-'");

  if (auto redis = env("REDIS_URL")) {
    try {
      parse_redis_url(*redis);
    } catch (const std::invalid_argument& e) {
      bad("REDIS_URL", fmt::format("must be redis://[:password@]host[:port][/db] or "
                                   "unix:///path/to/redis.sock ({}: \"{}\")",
                                   e.what(), *redis));
    }
    c.redis_url = *redis;
  }
  if (auto limits = env("RATE_LIMITS")) {
    if (*limits != "on" && *limits != "off")
      bad("RATE_LIMITS", fmt::format("must be on or off (got \"{}\")", *limits));
    c.rate_limits = *limits == "on";
  }
  if (auto level = env("LOG_LEVEL")) {
    // The spellings people bring from other tools (uvicorn and Python's logging say `warning`
    // and `critical`), in any case, as spdlog's names.
    std::string name = *level;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (name == "warning") name = "warn";
    if (name == "fatal") name = "critical";
    if (name != "trace" && name != "debug" && name != "info" && name != "warn" && name != "error" &&
        name != "critical")
      bad("LOG_LEVEL", fmt::format("must be trace, debug, info, warn (or warning), error or "
                                   "critical (got \"{}\")",
                                   *level));
    c.log_level = name;
  }
  if (auto format = env("LOG_FORMAT")) {
    const auto parsed = parse_enum<LogFormat>(*format);
    if (!parsed) bad("LOG_FORMAT", fmt::format("must be json or text (got \"{}\")", *format));
    c.log_format = *parsed;
  }

  if (auto token = env("METRICS_TOKEN")) {
    // It travels in a header: visible ASCII only, and long enough not to be guessed.
    if (token->size() < 16 || !std::all_of(token->begin(), token->end(),
                                           [](unsigned char ch) { return ch > 32 && ch < 127; }))
      bad("METRICS_TOKEN", "must be at least 16 visible ASCII characters, without spaces");
    c.metrics_token = *token;
  }
  if (env("METRICS_PORT")) {
    c.metrics_port = number<unsigned short>(env, "METRICS_PORT", 0, 0, 65535);
    if (*c.metrics_port != 0 && *c.metrics_port == c.port)
      bad("METRICS_PORT", fmt::format("must differ from PORT (both are {})", c.port));
  }
  return c;
}

}  // namespace billing
