#pragma once
// The service's settings, read from the environment once at start. Every bad or missing value
// stops the start with a message that names the variable.
#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "kit/log.hpp"

namespace billing {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class PaymentsProvider { stripe, local };

struct StripeSettings {
  std::string secret_key;
  std::string publishable_key;
  std::string webhook_secret;
  std::string api_version = "2023-10-16";
  std::string api_base = "https://api.stripe.com";
  std::string success_url;
  std::string cancel_url;
  // PRICE_HOSP_LITE_MONTHLY, PRICE_HOSP_LITE_YEARLY, PRICE_HOSP_PRO_MONTHLY, ...
  // PRICE_IND_PRO_YEARLY, in that order (see kPriceVariables).
  std::array<std::string, 8> prices;
};

inline constexpr std::array<const char*, 8> kPriceVariables{
    "PRICE_HOSP_LITE_MONTHLY", "PRICE_HOSP_LITE_YEARLY", "PRICE_HOSP_PRO_MONTHLY",
    "PRICE_HOSP_PRO_YEARLY",   "PRICE_IND_LITE_MONTHLY", "PRICE_IND_LITE_YEARLY",
    "PRICE_IND_PRO_MONTHLY",   "PRICE_IND_PRO_YEARLY"};

struct Config {
  std::string host = "127.0.0.1";
  unsigned short port = 8000;
  // Where browsers reach the service (behind a proxy, or bound to every address): the base of
  // the local provider's checkout and portal links. Empty: this machine's address of `host`.
  std::string public_url;
  std::size_t http_threads = 2;
  std::chrono::milliseconds header_timeout{10'000};

  std::string database_url = "sqlite:///billing.db";
  std::size_t database_pool_size = 4;  // PostgreSQL connections (and their threads)
  std::string plans_config;

  std::string jwt_secret;
  std::chrono::minutes jwt_expiry{30};
  std::string csrf_secret;
  std::chrono::minutes csrf_expiry{60};

  PaymentsProvider payments = PaymentsProvider::local;
  // The name the local provider keeps its objects under in the database: services that share a
  // database but not their local payments (test servers, say) each take a name of their own.
  std::string local_payments_account = "local";
  StripeSettings stripe;
  std::optional<std::string> redis_url;  // shared rate-limit buckets
  // Off for a deployment whose gateway limits already, and for benchmarks' runs without limits.
  bool rate_limits = true;
  std::string log_level = "info";
  LogFormat log_format = LogFormat::json;
  // GET /metrics: with a token, only for `Authorization: Bearer <token>`; with a port, served
  // there and not on the main port (0: any free one, printed at start).
  std::string metrics_token;
  std::optional<unsigned short> metrics_port;

  // The path of a sqlite:/// URL (SQLAlchemy's form: a fourth slash makes it absolute), or
  // nothing for PostgreSQL.
  std::optional<std::string> sqlite_path() const;
  // The database as a log or banner may name it: its kind and where it is, never a password.
  std::string database_shown() const;
  // The service's URL for a client: PUBLIC_URL, else `host` at `port` (the bound one), a
  // wildcard address (0.0.0.0, ::) as this machine's loopback, which a browser can open.
  std::string url_for_clients(unsigned short bound_port) const;
};

using Environment = std::function<std::optional<std::string>(const char* name)>;
Environment process_environment();

// `dev` fills what is missing with the embedded defaults (see app/dev.hpp) instead of failing.
Config load_config(const Environment& env, bool dev);

}  // namespace billing
