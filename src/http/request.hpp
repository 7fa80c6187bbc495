#pragma once
// Requests and responses as handlers see them: plain views, no Beast types. The views point into
// the session's message, which outlives the handler.
#include <optional>
#include <string>
#include <string_view>

namespace billing {

enum class Method { get, post, other };  // other: no route has it (405 or 404)

struct Request {
  Method method = Method::get;
  std::string_view path;   // percent-encoded, without the query
  std::string_view query;  // percent-encoded, without '?'
  std::string_view body;
  std::string_view authorization;  // the Authorization header
  std::string_view csrf_token;     // the X-CSRF-Token header

  // The decoded value of a query parameter, if present.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;        // JSON
  std::string_view allow;  // the Allow header of a 405
};

}  // namespace billing
