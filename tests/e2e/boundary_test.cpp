// End-to-end tests of the HTTP boundary of the real binary: request ids, the access log, request
// framing that could smuggle a second request, a port already in use, and the time claims of
// bearer tokens.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "client.hpp"
#include "kit/time.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;
using Steady = std::chrono::steady_clock;
using testing::HasSubstr;
using testing::Not;

constexpr std::size_t kJsonLimit = 64 * 1024;

bool is_generated_id(std::string_view id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

// How many responses `received` holds: each starts with a status line.
std::size_t status_lines(std::string_view received) {
  std::size_t count = 0;
  for (auto at = received.find("HTTP/1.1 "); at != std::string_view::npos;
       at = received.find("HTTP/1.1 ", at + 1))
    ++count;
  return count;
}

// ---------------------------------------------------------------------------------------------
// X-Request-Id

class E2eRequestId : public SharedServer {};

TEST_F(E2eRequestId, AGivenPrintableIdIsEchoedOnSuccessesAndOnErrors) {
  const std::string given = "req:" + unique_id("id") + "/~!#{}";
  const Headers with_id{{"X-Request-Id", given}};
  const auto with = [&](Headers headers) {
    headers.insert(headers.end(), with_id.begin(), with_id.end());
    return headers;
  };
  const auto hospital = unique_id("hosp");
  const auto token = sign_token(hospital_user(hospital));
  const auto assistant = sign_token(assistant_user(unique_id("asst"), hospital));
  HttpClient client(port());
  const auto csrf = fetch_csrf_token(client, token);
  Headers with_csrf = bearer(token);
  with_csrf.emplace_back("X-CSRF-Token", csrf);

  const struct {
    const char* name;
    HttpResponse response;
    int status;
  } cases[] = {
      {"health", client.get("/billing/health", with_id), 200},
      {"plan", client.get("/billing/plan", with(bearer(token))), 200},
      {"no token", client.get("/billing/plan", with_id), 401},
      {"no csrf", client.post("/billing/plan/select", "{}", with(bearer(token))), 403},
      {"role not admitted", client.get("/billing/plan", with(bearer(assistant))), 403},
      {"unknown path", client.get("/nope", with_id), 404},
      {"wrong method", client.post("/billing/health", "{}", with_id), 405},
      {"invalid body", client.post("/billing/plan/select", "{}", with(with_csrf)), 422},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.response.status, c.status) << c.response.body;
    EXPECT_EQ(c.response.header("x-request-id"), given);
  }

  // Answers the server makes itself, before any handler: the body limit and malformed requests.
  const struct {
    const char* name;
    std::string bytes;
    int status;
  } raw[] = {
      {"body over the limit",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given +
           "\r\nContent-Length: " + std::to_string(kJsonLimit + 1) + "\r\n\r\n" +
           std::string(kJsonLimit + 1, ' '),
       413},
      {"chunked body over the limit",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given +
           "\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n" + std::string(kJsonLimit + 1, ' ') +
           "\r\n0\r\n\r\n",
       413},
      {"no host", "GET /billing/health HTTP/1.1\r\nX-Request-Id: " + given + "\r\n\r\n", 400},
      {"bad chunk",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given +
           "\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
       400},
      {"chunked not last",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given +
           "\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
       400},
  };
  for (const auto& c : raw) {
    SCOPED_TRACE(c.name);
    Connection connection(port());
    connection.send(c.bytes);  // the server may answer (and close) before it has read it all
    const auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, c.status) << response->body;
    EXPECT_EQ(response->header("x-request-id"), given);
  }
}

TEST_F(E2eRequestId, AGivenIdIsEchoedOnA413ForAContentLengthOverEveryRoutesLimit) {
  // A complete, well-formed header whose Content-Length is over 1 MiB, the most any route takes:
  // the answer is 413 like one just over the route's own limit, and so is the id.
  const std::string given = unique_id("over-every-limit");
  for (const std::size_t length : {kJsonLimit + 1, std::size_t{1024 * 1024 + 1}}) {
    SCOPED_TRACE(length);
    Connection connection(port());
    ASSERT_TRUE(
        connection.send("POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given +
                        "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n"));
    const auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 413) << response->body;
    EXPECT_EQ(response->header("x-request-id"), given);
  }
}

TEST_F(E2eRequestId, AnIdOfSixtyFourVisibleCharactersIsKept) {
  const std::string longest(64, 'Z');
  HttpClient client(port());
  const auto response = client.get("/billing/health", {{"X-Request-Id", longest}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("x-request-id"), longest);
}

TEST_F(E2eRequestId, AMissingTooLongOrUnprintableIdIsReplacedByAFreshOne) {
  const struct {
    const char* name;
    Headers headers;
    const char* target;
    int status;
  } cases[] = {
      {"none", {}, "/billing/health", 200},
      {"none again", {}, "/billing/health", 200},
      {"none, 404", {}, "/nope", 404},
      {"none, 401", {}, "/billing/plan", 401},
      {"65 characters", {{"X-Request-Id", std::string(65, 'a')}}, "/billing/health", 200},
      {"65 characters, 404", {{"X-Request-Id", std::string(65, 'b')}}, "/nope", 404},
      {"empty", {{"X-Request-Id", ""}}, "/billing/health", 200},
      {"space", {{"X-Request-Id", "has space"}}, "/billing/health", 200},
      {"tab", {{"X-Request-Id", "has\ttab"}}, "/billing/health", 200},
      {"not ascii", {{"X-Request-Id", "caf\xc3\xa9"}}, "/billing/health", 200},
      // DEL is not allowed in a field value at all: a malformed request, still with an id.
      {"delete character", {{"X-Request-Id", "del\x7f"}}, "/billing/health", 400},
  };
  std::set<std::string> seen;
  HttpClient client(port());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto response = client.get(c.target, c.headers);
    EXPECT_EQ(response.status, c.status) << response.body;
    const auto id = response.header("x-request-id");
    EXPECT_TRUE(is_generated_id(id)) << "'" << id << "'";
    EXPECT_TRUE(seen.insert(id).second) << "the id " << id << " was given out twice";
  }
  // Also on an answer the server makes itself, with no usable header to go by.
  Connection connection(port());
  ASSERT_TRUE(connection.send("GARBAGE\r\n\r\n"));
  const auto malformed = connection.read_response();
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_TRUE(is_generated_id(malformed->header("x-request-id")))
      << malformed->header("x-request-id");
  EXPECT_TRUE(seen.insert(malformed->header("x-request-id")).second);
}

// ---------------------------------------------------------------------------------------------
// The access log

// The access-log lines of a server log: the JSON objects with a "method" (the other JSON lines
// are the service's own log).
std::vector<json::object> access_lines(const std::string& log) {
  auto lines = json_lines(log);
  std::erase_if(lines, [](const json::object& line) { return !line.contains("method"); });
  return lines;
}

struct Expected {
  std::string name;
  std::string request_id;  // the response's X-Request-Id
  std::string method;
  std::optional<std::string> route;
  int status = 0;
  std::optional<std::string> role;
  std::optional<std::string> entity;
};

json::value or_null(const std::optional<std::string>& text) {
  return text ? json::value(json::string(*text)) : json::value(nullptr);
}

TEST(E2eAccessLog, OneLinePerRequestWithTheRouteTheCallerAndNoSecrets) {
  auto server = BillingServer::for_backend("sqlite");
  HttpClient client(server->port());
  const auto hospital = unique_id("hosp");
  const auto token = sign_token(hospital_user(hospital));
  const auto admin = sign_token(admin_user(unique_id("admin")));
  const std::string marker = "BODY-MARKER-" + unique_id("m");
  const std::string given_id = unique_id("given");
  std::vector<Expected> expected;
  const auto sent = [&](std::string name, const HttpResponse& response, std::string method,
                        std::optional<std::string> route, std::optional<std::string> role,
                        std::optional<std::string> entity) {
    expected.push_back({std::move(name), response.header("x-request-id"), std::move(method),
                        std::move(route), response.status, std::move(role), std::move(entity)});
  };

  sent("health", client.get("/billing/health"), "GET", "/billing/health", {}, {});
  sent("plan with a query",
       client.get("/billing/plan?entity_id=" + hospital + "&x=1", bearer(token)), "GET",
       "/billing/plan", "hospital", hospital);
  const auto csrf_response = client.get("/csrf-token", bearer(token));
  ASSERT_EQ(csrf_response.status, 200) << csrf_response.body;
  const std::string csrf(csrf_response.json().at("csrf_token").as_string());
  sent("csrf", csrf_response, "GET", "/csrf-token", "hospital", hospital);
  Headers write = bearer(token);
  write.emplace_back("X-CSRF-Token", csrf);
  sent("select with a marked body",
       client.post("/billing/plan/select",
                   R"({"plan_type":"lite","id":")" + hospital + R"(","note":")" + marker + R"("})",
                   write),
       "POST", "/billing/plan/select", "hospital", hospital);
  sent("refused select with a marked body",
       client.post("/billing/plan/select", R"({"plan_type":")" + marker + R"("})", write), "POST",
       "/billing/plan/select", "hospital", hospital);
  sent("admin", client.get("/billing/plan/current?entity_id=" + hospital, bearer(admin)), "GET",
       "/billing/plan/current", "admin", {});
  sent("unknown path", client.get("/nope?entity_id=" + hospital), "GET", {}, {}, {});
  sent("no token", client.get("/billing/plan"), "GET", "/billing/plan", {}, {});
  Headers given = bearer(token);
  given.emplace_back("X-Request-Id", given_id);
  sent("given id", client.get("/billing/services", given), "GET", "/billing/services", "hospital",
       hospital);
  EXPECT_EQ(expected.back().request_id, given_id);

  // Lines are written every 100 ms: wait for all, then a little longer for any extra one.
  ASSERT_TRUE(
      eventually([&] { return access_lines(server->log()).size() >= expected.size(); }, 5s, 20ms))
      << server->log();
  std::this_thread::sleep_for(300ms);
  const std::string log = server->log();
  const auto lines = access_lines(log);
  EXPECT_EQ(lines.size(), expected.size()) << log;

  const std::set<std::string> fields{"time",   "request_id", "method", "route",
                                     "status", "latency_ms", "role",   "entity"};
  for (const auto& want : expected) {
    SCOPED_TRACE(want.name);
    const auto found = std::count_if(lines.begin(), lines.end(), [&](const json::object& line) {
      const auto* id = line.if_contains("request_id");
      return id && id->is_string() && id->get_string() == want.request_id;
    });
    ASSERT_EQ(found, 1) << "request id " << want.request_id << " in\n" << log;
    const auto& line = *std::find_if(lines.begin(), lines.end(), [&](const json::object& l) {
      return l.at("request_id").as_string() == want.request_id;
    });
    std::set<std::string> keys;
    for (const auto& field : line) keys.insert(std::string(field.key()));
    EXPECT_EQ(keys, fields) << json::serialize(line);
    EXPECT_EQ(line.at("method"), json::value(json::string(want.method)));
    EXPECT_EQ(line.at("route"), or_null(want.route)) << json::serialize(line);
    EXPECT_EQ(line.at("status"), json::value(want.status)) << json::serialize(line);
    EXPECT_EQ(line.at("role"), or_null(want.role)) << json::serialize(line);
    EXPECT_EQ(line.at("entity"), or_null(want.entity)) << json::serialize(line);
    const auto& latency = line.at("latency_ms");
    ASSERT_TRUE(latency.is_number()) << json::serialize(line);
    EXPECT_GE(latency.to_number<double>(), 0.0);
    EXPECT_LT(latency.to_number<double>(), 10'000.0);
    ASSERT_TRUE(line.at("time").is_string());
    EXPECT_TRUE(parse_iso8601(line.at("time").as_string())) << json::serialize(line);
  }

  // No credential and no body text anywhere in the log, access lines or others.
  for (const std::string& secret : {token, admin, token.substr(token.rfind('.') + 1),
                                    admin.substr(admin.rfind('.') + 1), csrf, marker}) {
    EXPECT_THAT(log, Not(HasSubstr(secret)));
  }
}

// ---------------------------------------------------------------------------------------------
// Framing: a body's end must be unambiguous, or the connection ends after one answer

class E2eFraming : public SharedServer {};

// Bytes that would be read as a second request if the server guessed the body's end wrongly.
constexpr std::string_view kSmuggled = "GET /billing/health HTTP/1.1\r\nHost: x\r\n\r\n";

std::string post_head(std::string_view framing) {
  return "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         std::string(framing) + "\r\n";
}

TEST_F(E2eFraming, AmbiguousBodiesGetOneAnswerThenTheConnectionCloses) {
  const std::string chunked_end = "0\r\n\r\n";
  const struct {
    const char* name;
    std::string bytes;
    int status;
  } cases[] = {
      {"chunked then identity",
       post_head("Transfer-Encoding: chunked, identity\r\n") + std::string(kSmuggled), 400},
      {"chunked then identity, two headers",
       post_head("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n") +
           std::string(kSmuggled),
       400},
      {"transfer-encoding then content-length",
       post_head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + chunked_end +
           std::string(kSmuggled),
       400},
      {"content-length then transfer-encoding",
       post_head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + chunked_end +
           std::string(kSmuggled),
       400},
      {"two content-lengths",
       post_head("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!" + std::string(kSmuggled),
       400},
      {"a content-length list",
       post_head("Content-Length: 5, 6\r\n") + "hello!" + std::string(kSmuggled), 400},
      {"a coding before chunked",
       post_head("Transfer-Encoding: gzip, chunked\r\n") + chunked_end + std::string(kSmuggled),
       501},
      {"transfer-encoding in HTTP/1.0",  // 1.0 has no transfer codings (RFC 9112 6.1)
       "POST /billing/plan/select HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
           chunked_end + std::string(kSmuggled),
       400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Connection connection(port());
    ASSERT_TRUE(connection.send(c.bytes));
    std::string received;
    EXPECT_TRUE(connection.wait_closed(3s, &received)) << "still open after\n" << received;
    EXPECT_EQ(status_lines(received), 1u) << received;
    EXPECT_TRUE(received.starts_with("HTTP/1.1 " + std::to_string(c.status) + " ")) << received;
    expect_healthy();
  }
}

TEST_F(E2eFraming, TheSameContentLengthTwiceIsOneLength) {
  // RFC 9110 8.6: identical Content-Length values may be taken as one.
  Connection connection(port());
  ASSERT_TRUE(connection.send(post_head("Content-Length: 5\r\nContent-Length: 5\r\n") + "hello" +
                              std::string(kSmuggled)));
  const auto first = connection.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 401) << first->body;  // through to authentication
  EXPECT_NE(first->header("connection"), "close");
  const auto second = connection.read_response();  // the next request began after 5 bytes
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_EQ(text(second->json().at("status")), "healthy");
  expect_healthy();
}

// ---------------------------------------------------------------------------------------------
// A port already in use

TEST(E2ePortInUse, ASecondServeFailsAndTheFirstKeepsAnsweringEveryRequest) {
  auto first = BillingServer::for_backend("sqlite");
  const auto port = first->port();
  TempDir dir;
  const Env env{{"JWT_SECRET_KEY", std::string(kJwtSecret)},
                {"CSRF_SECRET_KEY", std::string(kCsrfSecret)},
                {"DATABASE_URL", "sqlite:///" + dir.path() + "/second.db"},
                {"PAYMENTS_PROVIDER", "local"},
                {"LOG_LEVEL", "info"}};

  std::atomic<bool> finished{false};
  CommandResult second;
  Milliseconds took{};
  std::thread attempt([&] {
    const auto start = Steady::now();
    second = run_billing({"serve", "--port", std::to_string(port)}, env, 20s);
    took = std::chrono::duration_cast<Milliseconds>(Steady::now() - start);
    finished = true;
  });

  // Each request on a fresh connection, while the second process tries and after it gave up.
  int sent = 0, answered = 0, during = 0;
  std::vector<std::string> failures;
  const auto deadline = Steady::now() + 30s;
  while ((sent < 200 || !finished) && Steady::now() < deadline) {
    if (!finished) ++during;
    ++sent;
    try {
      Connection connection(port, 5s);
      const auto response = connection.exchange(
          {.method = "GET", .target = "/billing/health", .headers = {{"Connection", "close"}}});
      if (response.status == 200)
        ++answered;
      else
        failures.push_back(std::to_string(response.status) + " " + response.body);
    } catch (const std::exception& error) {
      failures.push_back(error.what());
    }
  }
  attempt.join();

  EXPECT_NE(second.code, -1) << "the second `serve` still ran after 20 s:\n" << second.output;
  EXPECT_NE(second.code, 0) << second.output;
  EXPECT_LT(took, 10s);
  EXPECT_THAT(second.output, HasSubstr("127.0.0.1:" + std::to_string(port))) << second.output;
  EXPECT_THAT(second.output, HasSubstr("in use")) << second.output;
  EXPECT_THAT(second.output, Not(HasSubstr("listening on"))) << second.output;
  // The port is taken before the database: the second process did not even create its file.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/second.db"));
  EXPECT_GE(sent, 200);
  EXPECT_GT(during, 0) << "no request was sent while the second process ran";
  EXPECT_EQ(answered, sent) << failures.size()
                            << " failed, the first: " << (failures.empty() ? "" : failures.front());
  EXPECT_FALSE(first->wait_exit(0ms)) << "the first server stopped:\n" << first->log();
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens and time: nbf and iat

class E2eTokenTimes : public SharedServer {
 protected:
  // A hospital token of a hospital of its own, with `extra` claims added.
  static std::string token_with(const json::object& extra) {
    json::object claims{{"sub", unique_id("user")},
                        {"role", "hospital"},
                        {"role_entity_id", unique_id("hosp")},
                        {"exp", unix_now() + 600}};
    for (const auto& [key, value] : extra) claims[key] = value;
    return sign_claims(claims);
  }
};

TEST_F(E2eTokenTimes, NotYetValidTokensAre401) {
  HttpClient client(port());
  for (const char* claim : {"nbf", "iat"}) {
    SCOPED_TRACE(claim);
    const auto response =
        client.get("/billing/plan", bearer(token_with({{claim, unix_now() + 600}})));
    EXPECT_EQ(response.status, 401) << response.body;
    EXPECT_EQ(response.detail_text(), "Token is not yet valid") << response.body;
    EXPECT_EQ(response.header("www-authenticate"), "Bearer");
  }
}

TEST_F(E2eTokenTimes, TimeClaimsThatAreNotNumbersAre401) {
  HttpClient client(port());
  const json::object cases[] = {
      {{"nbf", "soon"}}, {{"iat", "yesterday"}}, {{"nbf", nullptr}}, {{"iat", json::array{1}}}};
  for (const auto& extra : cases) {
    SCOPED_TRACE(json::serialize(extra));
    const auto response = client.get("/billing/plan", bearer(token_with(extra)));
    EXPECT_EQ(response.status, 401) << response.body;
    EXPECT_EQ(response.detail_text(), "Invalid authentication credentials") << response.body;
  }
}

TEST_F(E2eTokenTimes, PastOrBarelyFutureTimesAreAccepted) {
  HttpClient client(port());
  const auto now = unix_now();
  const json::object cases[] = {
      {{"nbf", now - 60}},
      {{"iat", now - 60}},
      {{"nbf", now - 60}, {"iat", now - 60}},
      {{"nbf", static_cast<double>(now) - 0.5}},
      {{"nbf", now + 3}, {"iat", now + 3}},  // within the 5 s allowed for clocks that disagree
  };
  for (const auto& extra : cases) {
    SCOPED_TRACE(json::serialize(extra));
    const auto response = client.get("/billing/plan", bearer(token_with(extra)));
    EXPECT_EQ(response.status, 200) << response.body;
  }
}

}  // namespace
}  // namespace billing::e2e
