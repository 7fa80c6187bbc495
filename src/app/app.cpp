#include "app/app.hpp"

#include "auth/routes.hpp"
#include "health/routes.hpp"
#include "payments/routes.hpp"
#include "plans/routes.hpp"
#include "services/routes.hpp"
#include "storage/postgres/postgres_db.hpp"
#include "storage/sqlite/sqlite_db.hpp"

namespace billing {

std::unique_ptr<Db> open_database(const Config& config) {
  std::unique_ptr<Db> db;
  if (auto path = config.sqlite_path())
    db = std::make_unique<SqliteDb>(*path);
  else
    db = std::make_unique<PostgresDb>(config.database_url, config.database_pool_size);
  db->migrate();
  return db;
}

Router all_routes(Db& db, const Catalog& catalog, const Clock& clock, const CsrfTokens& csrf,
                  Payments& payments) {
  Router router;
  add_health_routes(router, db, clock);
  add_auth_routes(router, csrf);
  add_plan_routes(router, db, catalog, clock, payments.subscription_changes());
  add_service_routes(router, db, catalog, clock);
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
      router_(all_routes(*db_, catalog_, clock_, csrf_, payments_)),
      access_log_(clock_),
      metrics_(router_),
      authenticate_(jwt_),
      verify_csrf_(csrf_),
      enrollment_(*db_, clock_),
      middleware_(request_ids_, access_log_, metrics_, authenticate_, authorize_role_, verify_csrf_,
                  rate_limit_, enrollment_) {}

void App::serve(ListeningSocket socket,
                const std::function<void(unsigned short port)>& on_listening) {
  Server server(
      ServerOptions{.threads = config_.http_threads, .header_timeout = config_.header_timeout},
      std::move(socket), router_, middleware_);
  server.run([&] { on_listening(server.port()); });
}

}  // namespace billing
