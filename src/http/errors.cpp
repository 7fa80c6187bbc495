#include "http/errors.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>

#include "kit/json.hpp"

namespace billing {

Response error_response(const ApiError& error) {
  Response response{error.status, {}, {}};
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
  return {200, to_json(body), {}};
}

Response internal_error(std::string_view route, const std::exception& error) {
  spdlog::error("{}: {}", route, error.what());
  return detail_response(500, "Internal server error");
}

}  // namespace billing
