#pragma once
// Log lines: spdlog's, one JSON object a line (LOG_FORMAT=json, for log collectors) or plain text
// (LOG_FORMAT=text, for people at a terminal). An event may carry the request id and fields of
// its own (log_event); never put a token, a secret or a request body in one.
#include <array>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include "kit/enums.hpp"

namespace billing {

enum class LogFormat { json, text };
template <>
struct EnumNames<LogFormat> {
  static constexpr std::array<std::string_view, 2> names{"json", "text"};
};

struct LogField {
  std::string_view name;
  std::string_view value;
};

// For spdlog::logger::set_formatter. JSON: {"time","level","message"} and, for log_event's
// lines, "request_id" (when there is one) and the event's fields. Text: the same, as
// `time level message request_id=... name=value ...`.
std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

// A field's value in the text form: as it is, or quoted and escaped as a JSON string when it is
// empty or holds a space, a quote, '=', a backslash or a control character, so that a value a
// client chose (an id it sent) cannot pass for further fields.
void append_text_value(std::string& text, std::string_view value);

// One line through the default logger. `request_id` may be "" (work no request asked for).
void log_event(spdlog::level::level_enum level, std::string_view message,
               std::string_view request_id, std::initializer_list<LogField> fields = {});
// The same, with fields chosen at run time.
void log_event(spdlog::level::level_enum level, std::string_view message,
               std::string_view request_id, std::span<const LogField> fields);

}  // namespace billing
