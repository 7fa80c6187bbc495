#include "health/routes.hpp"

#include <spdlog/spdlog.h>

#include "http/errors.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

boost::asio::awaitable<Response> get_health(Db& db, const Clock& clock) {
  try {
    co_await db.read([](Repo& repo) { repo.ping(); });
  } catch (const std::exception& error) {
    spdlog::warn("health check: database unavailable: {}", error.what());
    co_return detail_response(503, "Service unavailable");
  }
  co_return Response{
      200, R"({"status":"healthy","timestamp":")" + iso8601(clock.now()) + "\"}", {}};
}

}  // namespace

void add_health_routes(Router& router, Db& db, const Clock& clock) {
  router.add(
      {Method::get, "/billing/health", {}, [&db, &clock](Call) { return get_health(db, clock); }});
}

}  // namespace billing
