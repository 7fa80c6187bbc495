// The access log on its own: the line of one request, escaping, and how lines reach the file
// descriptor (buffered, written by flush(), by the writer thread, and at destruction).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "http/access_log.hpp"
#include "tests/e2e/client.hpp"

namespace billing::http_test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using namespace std::string_view_literals;
using testing::HasSubstr;

// 2027-01-15T08:30:00.123456Z
const TimePoint kTime =
    TimePoint(std::chrono::seconds(1'800'001'800) + std::chrono::microseconds(123'456));

json::object parse_object(std::string_view line) {
  boost::system::error_code ec;
  auto value = json::parse(line, ec);
  if (ec || !value.is_object()) throw std::runtime_error("not a JSON object: " + std::string(line));
  return std::move(value.get_object());
}

std::set<std::string> keys(const json::object& object) {
  std::set<std::string> out;
  for (const auto& field : object) out.insert(std::string(field.key()));
  return out;
}

const std::set<std::string> kFields{"time",   "request_id", "method", "route",
                                    "status", "latency_ms", "role",   "entity"};

// A pipe whose read end does not block.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read_fd = fds[0];
    write_fd = fds[1];
    ::fcntl(read_fd, F_SETFL, O_NONBLOCK);
  }
  ~Pipe() {
    ::close(read_fd);
    ::close(write_fd);
  }
  std::string drain() const {
    std::string out;
    char buffer[4096];
    for (;;) {
      const auto n = ::read(read_fd, buffer, sizeof buffer);
      if (n <= 0) return out;
      out.append(buffer, static_cast<std::size_t>(n));
    }
  }
};

// Named after the class it tests: `AccessLog` alone is the fixture here, billing::AccessLog the
// log.
class AccessLog : public testing::Test {
 protected:
  // A call to `route` (null: none) by `identity` (none: an open route).
  Call call(const Route* route, std::optional<Identity> identity, std::string request_id,
            Method method = Method::get) {
    auto& request = *requests_.emplace_back(std::make_unique<Request>());
    request.method = method;
    request.path = "/raw/path";
    Call c{request, route};
    c.request_id = std::move(request_id);
    c.identity = std::move(identity);
    return c;
  }

  const ManualClock clock_{kTime};
  const Route plan_{Method::get, "/billing/plan", Policy::read(RoleSet::all()), {}};

 private:
  std::vector<std::unique_ptr<Request>> requests_;
};

TEST_F(AccessLog, ALineIsOneJsonObjectWithEveryField) {
  billing::AccessLog log(clock_, -1, 1h);
  auto c = call(
      &plan_,
      Identity{.subject = "u-1", .role = Role::hospital, .entity_id = "hosp-1", .hospital_id = {}},
      "id-1");
  c.started = std::chrono::steady_clock::now() - 25ms;
  const auto text = log.line(c, Response{.status = 201});
  EXPECT_EQ(text.find('\n'), std::string::npos);
  // Milliseconds with three decimals.
  EXPECT_THAT(text, testing::ContainsRegex(R"("latency_ms":[0-9]+\.[0-9][0-9][0-9],"role")"));
  const auto line = parse_object(text);
  EXPECT_EQ(keys(line), kFields) << text;
  EXPECT_EQ(line.at("time"), json::value("2027-01-15T08:30:00.123456Z")) << text;
  EXPECT_EQ(line.at("request_id"), json::value("id-1"));
  EXPECT_EQ(line.at("method"), json::value("GET"));
  EXPECT_EQ(line.at("route"), json::value("/billing/plan"));  // the pattern, not the path
  EXPECT_EQ(line.at("status"), json::value(201));
  ASSERT_TRUE(line.at("latency_ms").is_number()) << text;
  EXPECT_GE(line.at("latency_ms").to_number<double>(), 25.0);
  EXPECT_LT(line.at("latency_ms").to_number<double>(), 60'000.0);
  EXPECT_EQ(line.at("role"), json::value("hospital"));
  EXPECT_EQ(line.at("entity"), json::value("hosp-1"));
}

TEST_F(AccessLog, NoRouteNoCallerAndAnAdminWithoutEntityAreNulls) {
  billing::AccessLog log(clock_, -1, 1h);
  const auto anonymous = parse_object(
      log.line(call(nullptr, std::nullopt, "id-2", Method::post), Response{.status = 404}));
  EXPECT_EQ(keys(anonymous), kFields);
  EXPECT_EQ(anonymous.at("method"), json::value("POST"));
  EXPECT_TRUE(anonymous.at("route").is_null());
  EXPECT_TRUE(anonymous.at("role").is_null());
  EXPECT_TRUE(anonymous.at("entity").is_null());
  EXPECT_EQ(anonymous.at("status"), json::value(404));

  const auto admin = parse_object(log.line(
      call(&plan_,
           Identity{.subject = "root", .role = Role::admin, .entity_id = {}, .hospital_id = {}},
           "id-3"),
      Response{.status = 200}));
  EXPECT_EQ(keys(admin), kFields);
  EXPECT_EQ(admin.at("role"), json::value("admin"));
  EXPECT_TRUE(admin.at("entity").is_null());
}

TEST_F(AccessLog, QuotesBackslashesAndControlCharactersAreEscaped) {
  billing::AccessLog log(clock_, -1, 1h);
  const std::vector<std::string> ids{R"(a"b)",
                                     R"(a\b)",
                                     R"(\"},"role":"admin)",
                                     R"(\u0041)",
                                     std::string("tab\tnl\nnul\0!"sv),
                                     "\x01\x1f\x7f",
                                     "caf\xc3\xa9"};
  for (const auto& id : ids) {
    SCOPED_TRACE(id);
    const auto text = log.line(
        call(&plan_,
             Identity{.subject = "s", .role = Role::individual, .entity_id = id, .hospital_id = {}},
             id),
        Response{.status = 200});
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;
    const auto line = parse_object(text);
    EXPECT_EQ(keys(line), kFields) << text;
    EXPECT_EQ(line.at("request_id"), json::value(json::string(id))) << text;
    EXPECT_EQ(line.at("entity"), json::value(json::string(id))) << text;
    EXPECT_EQ(line.at("role"), json::value("individual")) << text;
  }
}

// In the text form, an id that would read as further fields (or hide them) is quoted.
TEST_F(AccessLog, TextLinesQuoteIdsThatCouldPassForFields) {
  billing::AccessLog log(clock_, -1, 1h, LogFormat::text);
  const auto line = [&](std::string entity, std::string request_id) {
    return log.line(call(&plan_,
                         Identity{.subject = "s",
                                  .role = Role::hospital,
                                  .entity_id = std::move(entity),
                                  .hospital_id = {}},
                         std::move(request_id)),
                    Response{.status = 200});
  };
  EXPECT_THAT(line("h1", "id-1"), testing::EndsWith(" request_id=id-1 role=hospital entity=h1"));
  EXPECT_THAT(line("h1 role=admin entity=victim status=200", "id=2"),
              testing::EndsWith(R"( request_id="id=2" role=hospital )"
                                R"(entity="h1 role=admin entity=victim status=200")"));
}

TEST_F(AccessLog, LinesAreBufferedUntilFlushWritesThem) {
  Pipe pipe;
  billing::AccessLog log(clock_, pipe.write_fd, 1h);
  Response response{.status = 200};
  for (const char* id : {"first", "second", "third"})
    log.after(call(&plan_, std::nullopt, id), response);
  EXPECT_TRUE(response.headers.empty());  // the log adds nothing to the response
  EXPECT_EQ(pipe.drain(), "");            // buffered: the writer waits an hour
  log.flush();
  const auto written = pipe.drain();
  std::istringstream in(written);
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);) {
    const auto object = parse_object(line);
    EXPECT_EQ(keys(object), kFields);
    ids.push_back(std::string(object.at("request_id").as_string()));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"first", "second", "third"}));  // one thread: in order
  EXPECT_TRUE(written.ends_with('\n'));
  log.flush();
  EXPECT_EQ(pipe.drain(), "");  // nothing twice
}

TEST_F(AccessLog, TheWriterThreadFlushesOnItsOwn) {
  Pipe pipe;
  billing::AccessLog log(clock_, pipe.write_fd, 20ms);
  Response response{.status = 204};
  log.after(call(nullptr, std::nullopt, "by-itself"), response);
  std::string written;
  EXPECT_TRUE(e2e::eventually(
      [&] {
        written += pipe.drain();
        return written.ends_with('\n');
      },
      2s));
  EXPECT_THAT(written, HasSubstr(R"("request_id":"by-itself")"));
}

TEST_F(AccessLog, WhatIsLeftIsWrittenWhenTheLogEnds) {
  Pipe pipe;
  {
    billing::AccessLog log(clock_, pipe.write_fd, 1h);
    Response response{.status = 500};
    log.after(call(&plan_, std::nullopt, "last-words"), response);
  }
  const auto written = pipe.drain();
  EXPECT_THAT(written, HasSubstr(R"("request_id":"last-words")"));
  EXPECT_EQ(parse_object(written.substr(0, written.find('\n'))).at("status"), json::value(500));
}

TEST_F(AccessLog, LinesFromManyThreadsAreWholeAndNoneIsLost) {
  e2e::TempDir dir;
  const auto path = dir.path() + "/access.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  constexpr int kThreads = 4, kEach = 2000;  // more than one buffer's worth: early writes too
  {
    billing::AccessLog log(clock_, fd, 5ms);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          Request request{.method = Method::post, .path = "/p"};
          Call c{request, &plan_};
          c.request_id = std::to_string(t) + "-" + std::to_string(i);
          Response response{.status = 200 + t};
          log.after(c, response);
        }
      });
    for (auto& thread : threads) thread.join();
  }
  ::close(fd);
  std::ifstream in(path);
  std::set<std::string> ids;
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto object = parse_object(line);
    ASSERT_EQ(keys(object), kFields) << line;
    ids.insert(std::string(object.at("request_id").as_string()));
  }
  EXPECT_EQ(lines, kThreads * kEach);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace billing::http_test
