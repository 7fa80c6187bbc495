#pragma once
// The composition root: builds every object in dependency order, destroys them in reverse.
// Only this folder names concrete classes (SqliteDb, PostgresDb, SystemClock) and puts the
// middleware chain together.
#include <functional>
#include <memory>

#include "app/config.hpp"
#include "app/middleware.hpp"
#include "app/payments.hpp"
#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "core/db.hpp"
#include "http/route.hpp"
#include "http/server.hpp"
#include "kit/clock.hpp"
#include "plans/catalog.hpp"

namespace billing {

std::unique_ptr<Db> open_database(const Config& config);

// Every route of every domain.
Router all_routes(Db& db, const Catalog& catalog, const Clock& clock, const CsrfTokens& csrf,
                  Payments& payments);

class App {
 public:
  // Loads the catalog, opens the database, applies migrations. `base_url` is where clients reach
  // the service (links on the local payment pages).
  App(Config config, std::string base_url);

  const Config& config() const { return config_; }
  Db& db() { return *db_; }
  const Catalog& catalog() const { return catalog_; }
  const Clock& clock() const { return clock_; }
  const JwtCodec& jwt() const { return jwt_; }

  // Serves on `socket` (opened before the App, so a port in use stops the start before the
  // database is touched) until SIGTERM/SIGINT; `on_listening` gets the bound port once signals
  // are handled.
  void serve(ListeningSocket socket, const std::function<void(unsigned short port)>& on_listening);

 private:
  Config config_;
  SystemClock clock_;
  Catalog catalog_;
  std::unique_ptr<Db> db_;
  JwtCodec jwt_;
  CsrfTokens csrf_;
  Payments payments_;
  Router router_;

  RequestIds request_ids_;
  AccessLog access_log_;
  RouteMetrics metrics_;
  Authenticate authenticate_;
  AuthorizeRole authorize_role_;
  VerifyCsrf verify_csrf_;
  PlanRateLimit rate_limit_;
  Enrollment enrollment_;
  Middleware middleware_;
};

}  // namespace billing
