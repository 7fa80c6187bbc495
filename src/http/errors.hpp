#pragma once
// The one place where errors become `{"detail": ...}` responses, and the JSON 200s of handlers.
#include <exception>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "http/response.hpp"
#include "kit/api_error.hpp"

namespace billing {

Response error_response(const ApiError& error);
// Logs what happened for the operators, tells the client only "Internal server error".
Response internal_error(std::string_view request_id, std::string_view route,
                        const std::exception& error);
Response detail_response(int status, std::string_view detail);
Response json_response(const boost::json::value& body);  // 200
Response json_response(std::string body);                // 200, a body already JSON

}  // namespace billing
