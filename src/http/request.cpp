#include "http/request.hpp"

#include <algorithm>
#include <cctype>

#include <boost/url/pct_string_view.hpp>

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

namespace {

// A percent-encoded piece of a path or query, decoded (in a query, '+' as a space); as it is
// where an escape is not one (a stray '%'): no id or number a client means has one.
std::string decoded(std::string_view raw, bool plus_is_space) {
  // Boost.URL 1.81 decodes a view that is not NUL-terminated (ours are into the request line)
  // past its end; a copy ends where it should.
  const std::string terminated(raw);
  const auto pct = boost::urls::make_pct_string_view(terminated);
  return pct ? pct->decode(boost::urls::encoding_opts(plus_is_space)) : terminated;
}

}  // namespace

std::optional<std::string> Request::query_param(std::string_view name) const {
  // Each `key=value` apart: a query Boost.URL refuses whole (one bad escape, a '|') would read
  // as none, and drop an admin's `entity_id` or a page's `limit` with it.
  std::optional<std::string_view> found;
  for (std::string_view rest = query; !rest.empty();) {
    const auto end = rest.find('&');
    const auto param = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const auto equals = param.find('=');
    if (decoded(param.substr(0, equals), true) == name)
      found = equals == std::string_view::npos ? std::string_view() : param.substr(equals + 1);
  }
  if (!found) return std::nullopt;
  return decoded(*found, true);
}

std::string Request::path_param(std::string_view name) const {
  for (const auto& [key, raw] : path_params)
    if (key == name) return decoded(raw, false);
  return {};
}

}  // namespace billing
