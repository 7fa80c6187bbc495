#include "health/routes.hpp"

#include <spdlog/spdlog.h>

#include "health/repo.hpp"
#include "http/errors.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

boost::asio::awaitable<Response> get_health(Db& db, const Clock& clock) {
  try {
    co_await db.read([](Tx& tx) { tx.get<HealthRepo>().ping(); });
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
              [&db, &clock](const Call&) { return get_health(db, clock); }});
}

}  // namespace billing
