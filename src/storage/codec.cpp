#include "storage/codec.hpp"

#include <stdexcept>

#include "kit/json.hpp"
#include "kit/time.hpp"

namespace billing {

std::string encode_services(const std::vector<ServiceType>& services) {
  std::string out;
  for (ServiceType s : services) {
    if (!out.empty()) out.push_back(',');
    out += name_of(s);
  }
  return out;
}

std::vector<ServiceType> decode_services(std::string_view text) {
  std::vector<ServiceType> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.push_back(decode_enum<ServiceType>(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

TimePoint decode_time(std::string_view text) {
  if (auto t = parse_iso8601(text)) return *t;
  throw std::runtime_error("unexpected timestamp in database: " + std::string(text));
}

std::optional<std::string> optional_text(const sql::Row& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return std::string(row.text(column));
}

std::optional<std::int64_t> optional_integer(const sql::Row& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return row.integer(column);
}

sql::Param optional_param(const std::optional<std::string>& value) {
  if (value) return std::string_view(*value);
  return nullptr;
}

sql::Param optional_param(const std::optional<std::int64_t>& value) {
  if (value) return *value;
  return nullptr;
}

void JsonRows::add(std::initializer_list<std::pair<std::string_view, sql::Param>> columns) {
  text_ += text_.size() == 1 ? "{" : ",{";
  bool first = true;
  for (const auto& [name, value] : columns) {
    if (!std::exchange(first, false)) text_ += ',';
    append_json_string(text_, name);
    text_ += ':';
    if (const auto* s = std::get_if<std::string_view>(&value))
      append_json_string(text_, *s);
    else if (const auto* i = std::get_if<std::int64_t>(&value))
      text_ += std::to_string(*i);
    else
      text_ += "null";
  }
  text_ += '}';
}

std::string_view JsonRows::text() {
  if (text_.back() != ']') text_ += ']';
  return text_;
}

}  // namespace billing
