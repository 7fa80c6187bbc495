#include "http/request.hpp"

#include <boost/url/parse_query.hpp>

namespace billing {

std::optional<std::string> Request::query_param(std::string_view name) const {
  if (query.empty()) return std::nullopt;
  // Boost.URL 1.81 decodes the last value of a query that is not NUL-terminated (ours is a
  // view into the request line) past its end; a copy ends where it should.
  const std::string terminated(query);
  const auto params = boost::urls::parse_query(terminated);
  if (!params) return std::nullopt;
  for (auto param : *params)
    if (param.key.decode() == name) return param.value.decode();
  return std::nullopt;
}

}  // namespace billing
