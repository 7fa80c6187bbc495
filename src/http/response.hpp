#pragma once
// Responses as handlers make them: a status, a content type, a body and any extra headers. The
// server writes exactly this; it infers nothing from the status.
#include <string>
#include <string_view>

#include <boost/container/small_vector.hpp>

namespace billing {

enum class ContentType { json, html, prometheus, plain };

// The Content-Type header's value.
constexpr std::string_view content_type_text(ContentType type) {
  switch (type) {
    case ContentType::json:
      return "application/json";
    case ContentType::html:
      return "text/html; charset=utf-8";
    case ContentType::prometheus:
      return "text/plain; version=0.0.4; charset=utf-8";
    case ContentType::plain:
      return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

struct Header {
  std::string_view name;  // a literal: header names are fixed text in the code
  std::string value;
};

struct Response {
  int status = 200;
  ContentType content_type = ContentType::json;
  std::string body;
  boost::container::small_vector<Header, 2> headers;  // Retry-After, Location, X-Request-Id, ...

  // Throws std::invalid_argument for a value with a control character other than a tab: a
  // CR or LF from data a client chose would split the header (response splitting).
  Response& with_header(std::string_view name, std::string value);
};

}  // namespace billing
