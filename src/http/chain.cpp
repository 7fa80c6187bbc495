#include "http/chain.hpp"

#include "http/errors.hpp"
#include "kit/log.hpp"

namespace billing {
namespace {

Response no_route(const Call& call) {
  if (call.allow.empty()) return detail_response(404, "Not Found");
  auto response = detail_response(405, "Method Not Allowed");
  response.with_header("Allow", std::string(call.allow));
  return response;
}

std::string_view route_name(const Call& call) {
  return call.route ? std::string_view(call.route->pattern) : call.request.path;
}

// The steps' `after`, innermost first.
void leave(std::span<const StepCalls> steps, const Call& call, Response& response) {
  for (std::size_t i = steps.size(); i-- > 0;)
    if (steps[i].after) steps[i].after(steps[i].step, call, response);
}

}  // namespace

boost::asio::awaitable<Response> run_steps(std::span<const StepCalls> steps, Call& call) {
  Response response;
  std::size_t entered = 0;  // the steps reached: their `after` runs on the way out
  try {
    std::optional<Response> answer;
    while (entered < steps.size() && !answer) {
      const StepCalls& step = steps[entered++];
      if (step.ready && !step.ready(step.step, call)) co_await step.prepare(step.step, call);
      if (step.before) answer = step.before(step.step, call);
    }
    if (answer)
      response = std::move(*answer);
    else if (!call.route)
      response = no_route(call);
    else
      response = co_await call.route->handler(call);
  } catch (const ApiError& error) {
    response = error_response(error);
    const auto status = std::to_string(error.status);
    log_event(error.status >= 500 ? spdlog::level::err : spdlog::level::warn, "request refused",
              call.request_id,
              {{"route", route_name(call)}, {"status", status}, {"detail", response.body}});
  } catch (const std::exception& error) {
    response = internal_error(call.request_id, route_name(call), error);
  } catch (...) {
    response =
        internal_error(call.request_id, route_name(call), std::runtime_error("unknown exception"));
  }
  leave(steps.first(entered), call, response);
  co_return response;
}

void finish_steps(std::span<const StepCalls> steps, Call& call, Response& response) {
  for (const StepCalls& step : steps)
    if (step.after && step.before) step.before(step.step, call);  // an observer's own set-up
  leave(steps, call, response);
}

}  // namespace billing
