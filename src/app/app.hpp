#pragma once
// The composition root: builds every object in dependency order, destroys them in reverse.
// Only this folder names concrete classes (SqliteDb, PostgresDb, SystemClock) and puts the
// middleware chain together.
#include <functional>
#include <memory>
#include <optional>

#include "app/config.hpp"
#include "app/middleware.hpp"
#include "app/payments.hpp"
#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "core/db.hpp"
#include "http/route.hpp"
#include "http/server.hpp"
#include "kit/clock.hpp"
#include "kit/metrics.hpp"
#include "plans/catalog.hpp"
#include "plans/metrics.hpp"
#include "services/metrics.hpp"
#include "storage/redis/rate_counters.hpp"

namespace billing {

std::unique_ptr<Db> open_database(const Config& config);

// Every route of every domain.
Router all_routes(Db& db, const Catalog& catalog, const Clock& clock, const CsrfTokens& csrf,
                  Payments& payments, PlanMetrics& plan_metrics, ServiceMetrics& service_metrics);

class App {
 public:
  // Loads the catalog, opens the database, applies migrations. `base_url` is where clients reach
  // the service (links on the local payment pages).
  App(Config config, std::string base_url);
  ~App();

  const Config& config() const { return config_; }
  Db& db() { return *db_; }
  Payments& payments() { return payments_; }
  const Catalog& catalog() const { return catalog_; }
  const Clock& clock() const { return clock_; }
  const JwtCodec& jwt() const { return jwt_; }

  // Serves on `socket` (opened before the App, so a port in use stops the start before the
  // database is touched) until SIGTERM/SIGINT; `on_listening` gets the bound port once signals
  // are handled. `metrics_socket` (METRICS_PORT) serves GET /metrics and nothing else.
  void serve(ListeningSocket socket, std::optional<ListeningSocket> metrics_socket,
             const std::function<void(unsigned short port)>& on_listening);

 private:
  Config config_;
  SystemClock clock_;
  Catalog catalog_;
  std::unique_ptr<Db> db_;
  JwtCodec jwt_;
  CsrfTokens csrf_;
  Payments payments_;
  // What GET /metrics prints: each part keeps its own numbers, the registry asks each in turn.
  MetricsRegistry metrics_registry_;
  PlanMetrics plan_metrics_;
  ServiceMetrics service_metrics_;
  RateLimitMetrics rate_limit_metrics_;  // recorded by the rate limit
  const Server* server_ = nullptr;       // while serving (its open connections)
  Router router_;

  RequestIds request_ids_;
  AccessLog access_log_;
  RouteMetrics metrics_;
  Authenticate authenticate_;
  AuthorizeRole authorize_role_;
  VerifyCsrf verify_csrf_;
  std::unique_ptr<RedisRateCounters>
      redis_;  // with REDIS_URL; stopped first (it calls rate_limit_)
  PlanRateLimit rate_limit_;
  Enrollment enrollment_;
  Middleware middleware_;
  // With METRICS_PORT: GET /metrics alone on a socket of its own, with request ids and the
  // access log (scrapes there are not counted among the API's requests).
  Router metrics_router_;
  Chain<RequestIds, AccessLog> metrics_middleware_;

  void register_metrics();
};

}  // namespace billing
