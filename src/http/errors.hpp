#pragma once
// Responses with JSON bodies: the one place where errors become `{"detail": ...}`, and the
// 200s of the handlers.
#include <exception>
#include <string_view>

#include "http/request.hpp"
#include "kit/api_error.hpp"

namespace billing {

Response error_response(const ApiError& error);
// Logs what happened for the operators, tells the client only "Internal server error".
Response internal_error(std::string_view route, const std::exception& error);
Response detail_response(int status, std::string_view detail);
Response json_response(const boost::json::value& body);  // 200

}  // namespace billing
