#pragma once
// The composition root: builds every object in dependency order, destroys them in reverse.
// Only this folder names concrete classes (SqliteDb, PostgresDb, SystemClock).
#include <memory>

#include "app/config.hpp"
#include "auth/csrf.hpp"
#include "auth/enrollment.hpp"
#include "auth/jwt.hpp"
#include "http/dispatch.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"
#include "plans/catalog.hpp"
#include "storage/db.hpp"

namespace billing {

std::unique_ptr<Db> open_database(const Config& config);

class App {
 public:
  explicit App(Config config);  // loads the catalog, opens the database, applies migrations

  const Config& config() const { return config_; }
  Db& db() { return *db_; }
  const Catalog& catalog() const { return catalog_; }
  const Clock& clock() const { return clock_; }
  const JwtCodec& jwt() const { return jwt_; }

  // Serves until SIGTERM/SIGINT; `on_listening` gets the bound port once signals are handled.
  void serve(const std::function<void(unsigned short port)>& on_listening);

 private:
  Config config_;
  SystemClock clock_;
  Catalog catalog_;
  std::unique_ptr<Db> db_;
  JwtCodec jwt_;
  CsrfTokens csrf_;
  Enrollment enrollment_;
  Router router_;
  Dispatcher dispatcher_;
};

}  // namespace billing
