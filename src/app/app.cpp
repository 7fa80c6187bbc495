#include "app/app.hpp"

#include "app/process_metrics.hpp"
#include "auth/routes.hpp"
#include "health/routes.hpp"
#include "http/metrics_route.hpp"
#include "payments/routes.hpp"
#include "plans/routes.hpp"
#include "services/routes.hpp"
#include "storage/postgres/postgres_db.hpp"
#include "storage/sqlite/sqlite_db.hpp"

namespace billing {
namespace {

// GET /metrics on `router` if it belongs there: on the main port unless METRICS_PORT is set.
Router with_metrics_route(Router router, const MetricsRegistry& registry, const Config& config,
                          bool for_metrics_port) {
  if (config.metrics_port.has_value() == for_metrics_port)
    add_metrics_route(router, registry, config.metrics_token);
  return router;
}

}  // namespace

std::unique_ptr<Db> open_database(const Config& config) {
  try {
    std::unique_ptr<Db> db;
    if (auto path = config.sqlite_path())
      db = std::make_unique<SqliteDb>(*path);
    else
      db = std::make_unique<PostgresDb>(config.database_url, config.database_pool_size);
    db->migrate();
    return db;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("database (DATABASE_URL): ") + e.what());
  }
}

Router all_routes(Db& db, const Catalog& catalog, const Clock& clock, const CsrfTokens& csrf,
                  Payments& payments, PlanMetrics& plan_metrics, ServiceMetrics& service_metrics) {
  Router router;
  add_health_routes(router, db, clock);
  add_auth_routes(router, csrf);
  add_plan_routes(router, db, catalog, clock, payments.subscription_changes(), plan_metrics);
  add_service_routes(router, db, catalog, clock, service_metrics);
  payments.add_routes(router, db);
  return router;
}

App::App(Config config, std::string base_url)
    : config_(std::move(config)),
      catalog_(Catalog::load(config_.plans_config)),
      db_(open_database(config_)),
      jwt_(config_.jwt_secret, clock_),
      csrf_(config_.csrf_secret, clock_, config_.csrf_expiry),
      payments_(config_, *db_, catalog_, clock_, std::move(base_url)),
      router_(with_metrics_route(
          all_routes(*db_, catalog_, clock_, csrf_, payments_, plan_metrics_, service_metrics_),
          metrics_registry_, config_, false)),
      access_log_(clock_, 2, std::chrono::milliseconds(100), config_.log_format),
      metrics_(router_),
      authenticate_(jwt_),
      verify_csrf_(csrf_),
      redis_(config_.rate_limits && config_.redis_url
                 ? std::make_unique<RedisRateCounters>(parse_redis_url(*config_.redis_url))
                 : nullptr),
      rate_limit_(*db_, catalog_, config_.rate_limits, redis_.get(), rate_limit_metrics_),
      enrollment_(*db_, clock_),
      middleware_(request_ids_, access_log_, metrics_, authenticate_, authorize_role_, verify_csrf_,
                  rate_limit_, enrollment_),
      metrics_router_(with_metrics_route(Router{}, metrics_registry_, config_, true)),
      metrics_middleware_(request_ids_, access_log_) {
  register_metrics();
  // Last: once its thread runs, nothing may throw before ~App stops it first.
  if (redis_) redis_->start(rate_limit_);
}

void App::register_metrics() {
  auto& registry = metrics_registry_;
  registry.add([this](MetricsText& out) { metrics_.write(out); });
  registry.add([this](MetricsText& out) {
    authenticate_.failures().write(out);
    verify_csrf_.failures().write(out);
  });
  registry.add([this](MetricsText& out) {
    plan_metrics_.write(out);
    service_metrics_.write(out);
    rate_limit_metrics_.write(out);
  });
  registry.add([this](MetricsText& out) {
    db_->write_metrics(out);
    // SQLite writes on one connection; its readers come and go with the requests.
    const auto size = config_.sqlite_path() ? 1 : config_.database_pool_size;
    out.family("billing_db_pool_connections", "gauge",
               "Connections that run write units (PostgreSQL: DATABASE_POOL_SIZE; SQLite: its "
               "one writer), against billing_db_units_in_flight");
    out.sample("billing_db_pool_connections", {{"backend", name_of(db_->backend())}},
               static_cast<double>(size));
  });
  registry.add([this](MetricsText& out) { payments_.write_metrics(out); });
  registry.add([this](MetricsText& out) {
    write_process_metrics(out, server_ ? server_->open_connections() : 0);
  });
}

App::~App() {
  redis_.reset();
}

void App::serve(ListeningSocket socket, std::optional<ListeningSocket> metrics_socket,
                const std::function<void(unsigned short port)>& on_listening) {
  Server server(
      ServerOptions{.threads = config_.http_threads, .header_timeout = config_.header_timeout},
      std::move(socket), router_, middleware_);
  if (metrics_socket)
    server.also_serve(std::move(*metrics_socket), metrics_router_, metrics_middleware_);
  server_ = &server;
  payments_.start_sweeping();
  server.run([&] { on_listening(server.port()); }, [this] { payments_.stop(); });
  server_ = nullptr;
}

}  // namespace billing
