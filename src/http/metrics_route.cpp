#include "http/metrics_route.hpp"

#include "http/errors.hpp"
#include "kit/crypto.hpp"

namespace billing {
namespace {

boost::asio::awaitable<Response> get_metrics(const MetricsRegistry& metrics,
                                             const std::string& token, const Call& call) {
  if (!token.empty() && !constant_time_equal(call.request.bearer_token(), token)) {
    auto response = detail_response(401, "Not authenticated");
    response.with_header("WWW-Authenticate", "Bearer");
    co_return response;
  }
  co_return Response{
      .status = 200, .content_type = ContentType::prometheus, .body = metrics.render()};
}

}  // namespace

void add_metrics_route(Router& router, const MetricsRegistry& metrics, std::string token) {
  router.add({Method::get, "/metrics", Policy::open(),
              [&metrics, token = std::move(token)](const Call& call) {
                return get_metrics(metrics, token, call);
              }});
}

}  // namespace billing
