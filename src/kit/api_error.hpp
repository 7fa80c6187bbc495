#pragma once
// The one error type that reaches clients. `detail` is public text (or FastAPI's 422 list);
// anything else thrown becomes a bare 500 in http/errors.cpp.
#include <stdexcept>
#include <string>

#include <boost/json/value.hpp>

namespace billing {

struct ApiError : std::runtime_error {
  ApiError(int http_status, boost::json::value public_detail)
      : std::runtime_error("api error"), status(http_status), detail(std::move(public_detail)) {}
  ApiError(int http_status, std::string_view public_detail)
      : ApiError(http_status, boost::json::value(boost::json::string(public_detail))) {}
  ApiError(int http_status, const char* public_detail)
      : ApiError(http_status, std::string_view(public_detail)) {}

  int status;
  boost::json::value detail;
};

}  // namespace billing
