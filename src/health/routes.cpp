#include "health/routes.hpp"

#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "health/repo.hpp"
#include "http/errors.hpp"
#include "kit/cached_check.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

// While the last write failed for the storage's sake (a full disk, say), a write of one row tells
// when writes work again: at most one a second, whoever asks, as the route is open to all.
std::shared_ptr<CachedCheck> write_probe(Db& db) {
  return std::make_shared<CachedCheck>(
      [&db]() -> boost::asio::awaitable<void> {
        co_await db.transact([](Tx& tx) { tx.get<HealthRepo>().probe_write(); });
      },
      std::chrono::seconds(1),
      std::make_exception_ptr(std::runtime_error("a write to the database is being tried")));
}

boost::asio::awaitable<Response> get_health(Db& db, CachedCheck& write_probe, const Clock& clock) {
  try {
    co_await db.read([](Tx& tx) { tx.get<HealthRepo>().ping(); });
    if (db.writes_failing()) co_await write_probe.run();
    db.check_storage();
  } catch (const std::exception& error) {
    spdlog::warn("health check: database unavailable: {}", error.what());
    co_return detail_response(503, "Service unavailable");
  }
  co_return json_response(R"({"status":"healthy","timestamp":")" + iso8601(clock.now()) + "\"}");
}

}  // namespace

void add_health_routes(Router& router, Db& db, const Clock& clock) {
  router.add({Method::get, "/billing/health", Policy::open(),
              [&db, &clock, probe = write_probe(db)](const Call&) {
                return get_health(db, *probe, clock);
              }});
}

}  // namespace billing
