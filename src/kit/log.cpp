#include "kit/log.hpp"

#include <algorithm>
#include <string>

#include <spdlog/details/log_msg.h>
#include <spdlog/spdlog.h>

#include "kit/json.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

struct Event {
  std::string_view message;
  std::string_view request_id;
  std::span<const LogField> fields;
};
// The event being logged on this thread. spdlog's synchronous loggers format on the calling
// thread, inside the call, so the JSON formatter finds it here; plain spdlog calls find none.
thread_local const Event* current_event = nullptr;

std::string_view level_name(spdlog::level::level_enum level) {
  const auto name = spdlog::level::to_string_view(level);
  return {name.data(), name.size()};
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = R"({"time":")";
    append_iso8601_micros(line, msg.time);
    line += R"(","level":")";
    line += level_name(msg.level);
    line += R"(","message":)";
    if (!current_event) {
      append_json_string(line, {msg.payload.data(), msg.payload.size()});
    } else {
      append_json_string(line, current_event->message);
      if (!current_event->request_id.empty()) {
        line += R"(,"request_id":)";
        append_json_string(line, current_event->request_id);
      }
      for (const LogField& field : current_event->fields) {
        line += ',';
        append_json_string(line, field.name);
        line += ':';
        append_json_string(line, field.value);
      }
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// log_event's payload is already its text form (see there).
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    append_iso8601_micros(line, msg.time);
    line += ' ';
    line += level_name(msg.level);
    line += ' ';
    line.append(msg.payload.data(), msg.payload.size());
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
  if (format == LogFormat::text) return std::make_unique<TextFormatter>();
  return std::make_unique<JsonFormatter>();
}

void append_text_value(std::string& text, std::string_view value) {
  const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f;
  });
  if (plain)
    text += value;
  else
    append_json_string(text, value);
}

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::string_view request_id, std::initializer_list<LogField> fields) {
  log_event(level, message, request_id, std::span<const LogField>(fields.begin(), fields.size()));
}

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::string_view request_id, std::span<const LogField> fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  // The payload is the text form, `message request_id=... name=value ...`, for the text
  // formatter and any other (a test's, say); the JSON formatter takes the parts from `event`.
  std::string text(message);
  if (!request_id.empty()) {
    text += " request_id=";
    append_text_value(text, request_id);
  }
  for (const LogField& field : fields) {
    text += ' ';
    text += field.name;
    text += '=';
    append_text_value(text, field.value);
  }
  const Event event{message, request_id, fields};
  current_event = &event;
  logger->log(level, "{}", text);
  current_event = nullptr;
}

}  // namespace billing
