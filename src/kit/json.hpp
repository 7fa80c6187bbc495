#pragma once
// JSON text out of Boost.JSON values. Boost.JSON 1.81 prints 499.0 as "4.99E2"; this writer
// prints decimals the way the API documents them ("499.0", "4790.4").
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace billing {

void append_json(std::string& out, const boost::json::value& v);
std::string to_json(const boost::json::value& v);
// `s` as a JSON string, quoted and escaped.
void append_json_string(std::string& out, std::string_view s);

}  // namespace billing
