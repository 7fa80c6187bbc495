#include "http/errors.hpp"

#include "kit/json.hpp"
#include "kit/log.hpp"

namespace billing {

Response error_response(const ApiError& error) {
  Response response{.status = error.status};
  response.body.reserve(64);
  response.body = R"({"detail":)";
  append_json(response.body, error.detail);
  response.body.push_back('}');
  return response;
}

Response detail_response(int status, std::string_view detail) {
  return error_response(ApiError(status, detail));
}

Response json_response(const boost::json::value& body) {
  return json_response(to_json(body));
}

Response json_response(std::string body) {
  return Response{.status = 200, .content_type = ContentType::json, .body = std::move(body)};
}

Response internal_error(std::string_view request_id, std::string_view route,
                        const std::exception& error) {
  // The cause (a database error, say) is for the log only: the client learns nothing of it.
  log_event(spdlog::level::err, "request failed", request_id,
            {{"route", route}, {"error", error.what()}});
  return detail_response(500, "Internal server error");
}

}  // namespace billing
