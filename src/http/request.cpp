#include "http/request.hpp"

#include <algorithm>
#include <cctype>

#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>

#include "kit/api_error.hpp"

namespace billing {

std::string_view method_name(Method method) {
  switch (method) {
    case Method::get:
      return "GET";
    case Method::post:
      return "POST";
    case Method::other:
      break;
  }
  return "OTHER";
}

std::string_view Request::bearer_token() const {
  constexpr std::string_view scheme = "Bearer ";
  const auto value = header("Authorization");
  if (value.size() <= scheme.size() || !std::equal(scheme.begin(), scheme.end(), value.begin(),
                                                   [](unsigned char a, unsigned char b) {
                                                     return std::tolower(a) == std::tolower(b);
                                                   }))
    return {};
  return value.substr(scheme.size());
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  if (query.empty()) return std::nullopt;
  // Boost.URL 1.81 decodes the last value of a query that is not NUL-terminated (ours is a
  // view into the request line) past its end; a copy ends where it should.
  const std::string terminated(query);
  const auto params = boost::urls::parse_query(terminated);
  // Read as absent, a query with one bad escape would drop every parameter: an admin's
  // `entity_id`, a page's `limit`, and answer for what the caller did not ask.
  if (!params) throw ApiError(400, "Invalid query string");
  for (auto param : *params)
    if (param.key.decode() == name) return param.value.decode();
  return std::nullopt;
}

std::string Request::path_param(std::string_view name) const {
  for (const auto& [key, raw] : path_params) {
    if (key != name) continue;
    const std::string terminated(raw);  // see query_param
    const auto decoded = boost::urls::make_pct_string_view(terminated);
    return decoded ? decoded->decode() : terminated;
  }
  return {};
}

}  // namespace billing
