#include "kit/log.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>

namespace billing {
namespace {

// Lines logged through the default logger while it lives, in the given format.
class CapturedLog {
 public:
  explicit CapturedLog(LogFormat format) : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
    logger->set_formatter(make_log_formatter(format));
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(Log, JsonLinesCarryTheRequestIdAndFields) {
  CapturedLog log(LogFormat::json);
  log_event(spdlog::level::warn, "said \"no\"\n", "req-1", {{"reason", "a\\b"}, {"entity", "h1"}});
  const auto text = log.text();
  ASSERT_TRUE(text.ends_with("}\n")) << text;
  const auto line = boost::json::parse(text).as_object();
  EXPECT_EQ(line.at("level").as_string(), "warning");
  EXPECT_EQ(line.at("message").as_string(), "said \"no\"\n");
  EXPECT_EQ(line.at("request_id").as_string(), "req-1");
  EXPECT_EQ(line.at("reason").as_string(), "a\\b");
  EXPECT_EQ(line.at("entity").as_string(), "h1");
  EXPECT_TRUE(line.at("time").as_string().ends_with("Z"));
}

TEST(Log, PlainSpdlogCallsAreJsonWithoutARequestId) {
  CapturedLog log(LogFormat::json);
  spdlog::info("listening on {}", "x");
  log_event(spdlog::level::info, "no request", "");
  std::istringstream lines(log.text());
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  const auto plain = boost::json::parse(first).as_object();
  EXPECT_EQ(plain.at("message").as_string(), "listening on x");
  EXPECT_FALSE(plain.contains("request_id"));
  EXPECT_FALSE(boost::json::parse(second).as_object().contains("request_id"));
}

TEST(Log, TextForPeople) {
  CapturedLog log(LogFormat::text);
  log_event(spdlog::level::err, "request failed", "req-2", {{"route", "/r"}});
  spdlog::info("plain");
  const auto text = log.text();
  EXPECT_NE(text.find("Z error request failed request_id=req-2 route=/r\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("Z info plain\n"), std::string::npos) << text;
}

// A value with a space, quote or '=' (an id a client sent) is quoted, so it cannot pass for
// further fields of the line.
TEST(Log, TextQuotesValuesThatCouldPassForFields) {
  CapturedLog log(LogFormat::text);
  log_event(spdlog::level::warn, "request refused", "",
            {{"id", "x status=500"}, {"detail", "say \"hi\""}, {"empty", ""}, {"plain", "sub_1"}});
  EXPECT_NE(log.text().find(
                R"(request refused id="x status=500" detail="say \"hi\"" empty="" plain=sub_1)"),
            std::string::npos)
      << log.text();
}

TEST(Log, BelowTheLevelNothingIsFormatted) {
  CapturedLog log(LogFormat::json);
  spdlog::default_logger()->set_level(spdlog::level::err);
  log_event(spdlog::level::info, "quiet", "req-3");
  EXPECT_EQ(log.text(), "");
}

}  // namespace
}  // namespace billing
