#pragma once
// Requests as handlers see them: plain views, no Beast types. The views point into the session's
// message and connection, which outlive the handler.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/container/small_vector.hpp>

#include "kit/function_ref.hpp"

namespace billing {

enum class Method { get, post, other };  // other: no route has it (405 or 404)

std::string_view method_name(Method method);  // "GET", "POST", "OTHER"

class Request {
 public:
  using HeaderLookup = FunctionRef<std::string_view(std::string_view name)>;

  Method method = Method::get;
  std::string_view path;            // percent-encoded, without the query
  std::string_view query;           // percent-encoded, without '?'
  std::string_view body;            // the raw bytes, exactly as received
  std::string_view client_address;  // the peer's IP address
  HeaderLookup header_lookup;       // set by the server

  // A header's value, its name matched case-insensitively; "" if absent.
  std::string_view header(std::string_view name) const {
    return header_lookup ? header_lookup(name) : std::string_view{};
  }
  // The token of an `Authorization: Bearer <token>` header (the scheme in any case), or "".
  std::string_view bearer_token() const;
  // The decoded value of a query parameter, if present ('+' a space; the last of that name, as
  // FastAPI reads one). An escape that is not one (a stray '%') is kept as it is.
  std::optional<std::string> query_param(std::string_view name) const;
  // The decoded value of a `{name}` segment of the route's pattern; "" if the pattern has none.
  std::string path_param(std::string_view name) const;

  // Filled by the router: the `{name}` segments of the pattern and the raw path segments they
  // matched.
  boost::container::small_vector<std::pair<std::string_view, std::string_view>, 2> path_params;
};

}  // namespace billing
