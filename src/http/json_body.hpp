#pragma once
// Decodes a JSON request body field by field, collecting every problem, and reports them all at
// once as a 422 in FastAPI's shape: {"detail": [{"type", "loc", "msg"}, ...]}.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "http/request.hpp"
#include "kit/api_error.hpp"
#include "kit/enums.hpp"

namespace billing {

// A 422 for one bad query parameter, in the same shape as the body's.
ApiError query_error(std::string_view name, std::string_view type, std::string msg);

// Ids a client names in the URL (a customer's, a subscription's, an entity's): 1-128 bytes of
// UTF-8 without control characters (plausible_id), else a 422 naming the parameter. Percent
// escapes can spell any bytes, which a database refuses and a JSON answer cannot echo.
std::optional<std::string> query_id(const Request& request, std::string_view name);  // if present
std::string path_id(const Request& request, std::string_view name);

class JsonBody {
 public:
  explicit JsonBody(std::string_view raw);  // 422 if not a JSON object

  // A non-empty string of at most `max_length` bytes (ids: no one needs a longer one).
  std::string required_string(std::string_view name, std::size_t max_length = 128);
  template <class E>
  E required_enum(std::string_view name) {
    return enum_from<E>(name, required(name)).value_or(E{});
  }
  template <class E>
  std::optional<E> optional_enum(std::string_view name) {
    const auto* v = object_.if_contains(name);
    if (!v || v->is_null()) return std::nullopt;
    return enum_from<E>(name, v);
  }
  template <class E>
  std::vector<E> required_enum_list(std::string_view name);

  void finish() const;  // throws the 422 if any field was wrong

 private:
  const boost::json::value* required(std::string_view name);
  void error(boost::json::array loc, std::string_view type, std::string msg);
  template <class E>
  std::optional<E> enum_from(std::string_view name, const boost::json::value* v,
                             std::optional<std::size_t> index = std::nullopt);

  boost::json::object object_;
  boost::json::array errors_;
};

template <class E>
std::optional<E> JsonBody::enum_from(std::string_view name, const boost::json::value* v,
                                     std::optional<std::size_t> index) {
  if (!v) return std::nullopt;
  boost::json::array loc{"body", name};
  if (index) loc.emplace_back(*index);
  if (v->is_string())
    if (auto parsed = parse_enum<E>(v->get_string())) return parsed;
  error(std::move(loc), "enum", "Input should be " + quoted_choices<E>());
  return std::nullopt;
}

template <class E>
std::vector<E> JsonBody::required_enum_list(std::string_view name) {
  std::vector<E> out;
  const auto* v = required(name);
  if (!v) return out;
  if (!v->is_array()) {
    error({"body", name}, "list_type", "Input should be a valid list");
    return out;
  }
  const auto& items = v->get_array();
  for (std::size_t i = 0; i < items.size(); ++i)
    if (auto e = enum_from<E>(name, &items[i], i)) out.push_back(*e);
  return out;
}

}  // namespace billing
