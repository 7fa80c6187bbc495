#include "http/json_body.hpp"

#include <boost/json/parser.hpp>

#include "kit/api_error.hpp"
#include "kit/text.hpp"

namespace billing {
namespace {

[[noreturn]] void reject(boost::json::object error) {
  throw ApiError(422, boost::json::array{std::move(error)});
}

}  // namespace

ApiError query_error(std::string_view name, std::string_view type, std::string msg) {
  return ApiError(422, boost::json::array{boost::json::object{
                           {"type", type}, {"loc", {"query", name}}, {"msg", std::move(msg)}}});
}

namespace {

constexpr std::string_view kIdPattern = "An id of 1 to 128 characters without control characters";

}  // namespace

std::optional<std::string> query_id(const Request& request, std::string_view name) {
  auto id = request.query_param(name);
  if (id && !plausible_id(*id))
    throw query_error(name, "string_pattern_mismatch", std::string(kIdPattern));
  return id;
}

std::string path_id(const Request& request, std::string_view name) {
  auto id = request.path_param(name);
  if (!plausible_id(id))
    throw ApiError(422, boost::json::array{boost::json::object{{"type", "string_pattern_mismatch"},
                                                               {"loc", {"path", name}},
                                                               {"msg", kIdPattern}}});
  return id;
}

JsonBody::JsonBody(std::string_view raw) {
  if (raw.find_first_not_of(" \t\r\n") == std::string_view::npos)
    reject({{"type", "missing"}, {"loc", {"body"}}, {"msg", "Field required"}});
  boost::json::parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write(raw, ec);
  if (ec) reject({{"type", "json_invalid"}, {"loc", {"body", used}}, {"msg", "JSON decode error"}});
  auto value = parser.release();
  if (!value.is_object())
    reject({{"type", "model_attributes_type"},
            {"loc", {"body"}},
            {"msg", "Input should be a valid dictionary or object to extract fields from"}});
  object_ = std::move(value.get_object());
}

void JsonBody::error(boost::json::array loc, std::string_view type, std::string msg) {
  errors_.push_back(
      boost::json::object{{"type", type}, {"loc", std::move(loc)}, {"msg", std::move(msg)}});
}

const boost::json::value* JsonBody::required(std::string_view name) {
  const auto* v = object_.if_contains(name);
  if (!v) error({"body", name}, "missing", "Field required");
  return v;
}

std::string JsonBody::required_string(std::string_view name, std::size_t max_length) {
  const auto* v = required(name);
  if (!v) return {};
  if (!v->is_string()) {
    error({"body", name}, "string_type", "Input should be a valid string");
    return {};
  }
  if (v->get_string().empty()) {
    error({"body", name}, "string_too_short", "String should have at least 1 character");
    return {};
  }
  if (!free_of_control_characters(v->get_string())) {
    error({"body", name}, "string_pattern_mismatch",
          "String should not contain control characters");
    return {};
  }
  if (v->get_string().size() > max_length) {
    error({"body", name}, "string_too_long",
          "String should have at most " + std::to_string(max_length) + " characters");
    return {};
  }
  return std::string(v->get_string());
}

void JsonBody::finish() const {
  if (!errors_.empty()) throw ApiError(422, errors_);
}

}  // namespace billing
