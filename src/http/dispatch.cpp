#include "http/dispatch.hpp"

#include <spdlog/spdlog.h>

#include "http/errors.hpp"

namespace billing {

Identity Dispatcher::authenticate(const Request& request) const {
  constexpr std::string_view scheme = "Bearer ";
  const auto header = request.authorization;
  if (header.empty()) throw ApiError(401, "Not authenticated");
  if (header.size() <= scheme.size() || !std::equal(scheme.begin(), scheme.end(), header.begin(),
                                                    [](unsigned char a, unsigned char b) {
                                                      return std::tolower(a) == std::tolower(b);
                                                    }))
    throw ApiError(401, "Not authenticated");
  return jwt_.verify(header.substr(scheme.size()));
}

boost::asio::awaitable<Response> Dispatcher::run(const Route& route, const Request* request) const {
  Call call{request, {}};
  if (route.policy.action) {
    call.caller = authenticate(*request);
    if (!allowed(call.caller.role, *route.policy.action))
      throw ApiError(403, denial_detail(*route.policy.action));
    if (route.policy.csrf && !csrf_.valid(request->csrf_token, call.caller.subject))
      throw ApiError(403, "Invalid CSRF token");
    if (!enrollment_.known(call.caller)) co_await enrollment_.enroll(call.caller, clock_.now());
  }
  co_return co_await route.handler(std::move(call));
}

boost::asio::awaitable<Response> Dispatcher::handle(const Request* request) const {
  const auto match = router_.find(request->method, request->path);
  if (!match.route) {
    if (match.allow.empty()) co_return detail_response(404, "Not Found");
    auto response = detail_response(405, "Method Not Allowed");
    response.allow = match.allow;
    co_return response;
  }
  try {
    co_return co_await run(*match.route, request);
  } catch (const ApiError& error) {
    auto response = error_response(error);
    spdlog::log(error.status >= 500 ? spdlog::level::err : spdlog::level::warn, "{} -> {} {}",
                match.route->path, error.status, response.body);
    co_return response;
  } catch (const std::exception& error) {
    co_return internal_error(match.route->path, error);
  } catch (...) {
    co_return internal_error(match.route->path, std::runtime_error("unknown exception"));
  }
}

}  // namespace billing
