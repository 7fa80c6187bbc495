// The HTTP server with routes of the tests' own, through the real request-id, access-log and
// metrics steps, in a forked child (forked_server.hpp): per-route body limits, content types and
// headers exactly as handlers set them, what handlers can read of a request, path parameters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstddef>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "http/access_log.hpp"
#include "http/chain.hpp"
#include "http/errors.hpp"
#include "http/request_id.hpp"
#include "http/route_metrics.hpp"
#include "http/server.hpp"
#include "kit/clock.hpp"
#include "kit/crypto.hpp"
#include "kit/json.hpp"
#include "tests/http/forked_server.hpp"

namespace billing::http_test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using e2e::Connection;
using e2e::eventually;
using e2e::HttpClient;
using e2e::HttpRequest;
using e2e::HttpResponse;
using e2e::text;
using testing::HasSubstr;
using testing::Not;

using Awaitable = boost::asio::awaitable<Response>;

// The child's header and I/O timeouts, and a handler that takes longer than both.
constexpr std::chrono::milliseconds kClientTimeout = 1500ms;
constexpr std::chrono::milliseconds kSlowHandler = 2500ms;
constexpr std::chrono::milliseconds kDrain = 500ms;  // how long SIGTERM waits for clients

// What a body hashes to, the same in the child's handler and in the test.
std::string digest(std::string_view bytes) {
  return base64url_encode(as_chars(hmac_sha256("test", bytes)));
}

// Every byte value, CR, LF and NUL included, over and over.
std::string binary_body(std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>((i * 7 + i / 256) % 256);
  return body;
}

Awaitable describe_body(const Call& call) {
  co_return json_response(
      json::value{{"size", call.request.body.size()}, {"digest", digest(call.request.body)}});
}

json::value or_null(const std::optional<std::string>& value) {
  return value ? json::value(json::string(*value)) : json::value(nullptr);
}

// What a handler can read of its request.
Awaitable echo(const Call& call) {
  const Request& r = call.request;
  co_return json_response(json::value{
      {"lower", r.header("x-custom-thing")},
      {"upper", r.header("X-CUSTOM-THING")},
      {"mixed", r.header("X-Custom-Thing")},
      {"other", r.header("x-OTHER")},
      {"missing", r.header("X-Missing")},
      {"client", r.client_address},
      {"request_id", call.request_id},
      {"path", r.path},
      {"query", r.query},
      {"q", or_null(r.query_param("q"))},
      {"absent", or_null(r.query_param("absent"))},
      {"method", method_name(r.method)},
      {"has_route", call.route != nullptr},
      {"has_identity", call.identity.has_value()},
  });
}

// The routes the child serves. `metrics` is set once the RouteMetrics exists (it needs the
// routes first).
Router test_routes(const RouteMetrics* const& metrics) {
  Router router;
  router.add(
      {Method::post, "/large", Policy::open().with_body_limit(kLargeBodyLimit), describe_body});
  router.add({Method::post, "/small", Policy::open(), describe_body});
  router.add({Method::get, "/html", Policy::open(), [](const Call&) -> Awaitable {
                co_return Response{.status = 200,
                                   .content_type = ContentType::html,
                                   .body = "<!doctype html><p>caf\xc3\xa9</p>"};
              }});
  router.add({Method::get, "/prometheus", Policy::open(), [](const Call&) -> Awaitable {
                co_return Response{.status = 200,
                                   .content_type = ContentType::prometheus,
                                   .body = "# TYPE things_total counter\nthings_total 3\n"};
              }});
  router.add({Method::get, "/plain", Policy::open(), [](const Call&) -> Awaitable {
                Response response{
                    .status = 503, .content_type = ContentType::plain, .body = "later\n"};
                response.with_header("Retry-After", "120");
                co_return response;
              }});
  router.add({Method::get, "/moved", Policy::open(), [](const Call&) -> Awaitable {
                Response response{.status = 303, .content_type = ContentType::plain};
                response.with_header("Location", "/elsewhere?x=1&y=%20");
                co_return response;
              }});
  router.add({Method::get, "/limited", Policy::open(), [](const Call&) -> Awaitable {
                auto response = detail_response(429, "Too many requests");
                response.with_header("Retry-After", "7")
                    .with_header("X-RateLimit-Limit", "100")
                    .with_header("X-RateLimit-Remaining", "0")
                    .with_header("X-RateLimit-Reset", "1700000000");
                co_return response;
              }});
  router.add({Method::get, "/unauthorized", Policy::open(),
              [](const Call&) -> Awaitable { co_return detail_response(401, "Who are you?"); }});
  router.add({Method::get, "/challenge", Policy::open(), [](const Call&) -> Awaitable {
                auto response = detail_response(401, "Who are you?");
                response.with_header("WWW-Authenticate", R"(Bearer realm="tests")");
                co_return response;
              }});
  router.add({Method::get, "/echo", Policy::open(), echo});
  router.add({Method::post, "/echo", Policy::open(), echo});
  router.add({Method::get, "/things/{id}/parts", Policy::open(), [](const Call& call) -> Awaitable {
                co_return json_response(json::value{{"id", call.request.path_param("id")},
                                                    {"none", call.request.path_param("none")}});
              }});
  router.add({Method::post, "/slow", Policy::open(), [](const Call& call) -> Awaitable {
                boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                                kSlowHandler);
                co_await timer.async_wait(boost::asio::use_awaitable);
                co_return json_response(json::value{{"size", call.request.body.size()}});
              }});
  router.add({Method::post, "/throws", Policy::open(), [](const Call&) -> Awaitable {
                throw std::runtime_error("secret-internal-detail");
                co_return Response{};
              }});
  router.add({Method::get, "/stats", Policy::open(), [&metrics](const Call&) -> Awaitable {
                json::array counts;
                for (const auto& c : metrics->snapshot().counts)
                  counts.push_back(json::object{{"route", c.route},
                                                {"method", c.method},
                                                {"status", c.status},
                                                {"requests", c.requests}});
                co_return json_response(json::value(std::move(counts)));
              }});
  return router;
}

// The child: the test routes behind the real observing steps.
void serve_test_routes(ForkedServer::Child& child) {
  const RouteMetrics* metrics_ref = nullptr;
  const Router router = test_routes(metrics_ref);
  SystemClock clock;
  RequestIds request_ids;
  AccessLog access_log(clock, child.access_log_fd, 20ms);
  RouteMetrics metrics(router);
  metrics_ref = &metrics;
  const Chain<RequestIds, AccessLog, RouteMetrics> chain(request_ids, access_log, metrics);
  Server server(ServerOptions{.threads = 2,
                              .header_timeout = kClientTimeout,
                              .io_timeout = kClientTimeout,
                              .drain_timeout = kDrain},
                ListeningSocket("127.0.0.1", 0), router, chain);
  server.run([&] { child.listening(server.port()); });
}

class HttpServer : public testing::Test {
 protected:
  unsigned short port() const { return server_.port(); }
  ForkedServer& server() { return server_; }

  // One request on a new connection; the response, and whether the server then closed it.
  struct Answer {
    HttpResponse response;
    bool closed = false;
  };
  Answer post_once(std::string target, std::string body, bool chunked, e2e::Headers headers = {}) {
    Connection connection(port());
    // Not checked: the server may answer and close before it has read the whole body.
    connection.send(HttpRequest{.method = "POST",
                                .target = std::move(target),
                                .body = std::move(body),
                                .headers = std::move(headers),
                                .chunked = chunked});
    auto response = connection.read_response();
    if (!response) throw std::runtime_error("no response");
    Answer answer{*response, false};
    if (answer.response.header("connection") == "close") answer.closed = connection.wait_closed(2s);
    return answer;
  }

 private:
  ForkedServer server_{serve_test_routes};
};

TEST_F(HttpServer, ALargeRouteTakesOneMebibyteExactlyAsSent) {
  const auto body = binary_body(kLargeBodyLimit);
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    const auto answer = post_once("/large", body, chunked);
    ASSERT_EQ(answer.response.status, 200) << answer.response.body;
    const auto json = answer.response.json();
    EXPECT_EQ(json.at("size"), json::value(kLargeBodyLimit));
    EXPECT_EQ(text(json.at("digest")), digest(body));
    EXPECT_FALSE(answer.closed);
  }
  const auto over = binary_body(kLargeBodyLimit + 1);
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked, one byte over" : "content-length, one byte over");
    const auto answer = post_once("/large", over, chunked, {{"X-Request-Id", "too-large"}});
    EXPECT_EQ(answer.response.status, 413) << answer.response.body;
    EXPECT_EQ(answer.response.body, R"({"detail":"Request body too large"})");
    EXPECT_TRUE(answer.closed);
    // A Content-Length over every route's limit is refused with the header, before the id is
    // read: E2eRequestId.AGivenIdIsEchoedOnA413ForAContentLengthOverEveryRoutesLimit.
    if (chunked) {
      EXPECT_EQ(answer.response.header("x-request-id"), "too-large");
    }
  }
}

TEST_F(HttpServer, ADefaultRouteTakesSixtyFourKibibytes) {
  const auto at_limit = binary_body(kJsonBodyLimit);
  const auto over = binary_body(kJsonBodyLimit + 1);
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    const auto taken = post_once("/small", at_limit, chunked);
    ASSERT_EQ(taken.response.status, 200) << taken.response.body;
    EXPECT_EQ(text(taken.response.json().at("digest")), digest(at_limit));

    const auto refused = post_once("/small", over, chunked, {{"X-Request-Id", "small-over"}});
    EXPECT_EQ(refused.response.status, 413) << refused.response.body;
    EXPECT_TRUE(refused.closed);
    EXPECT_EQ(refused.response.header("x-request-id"), "small-over");

    // The same bytes are fine for a route that declares more.
    const auto large = post_once("/large", over, chunked);
    EXPECT_EQ(large.response.status, 200) << large.response.body;
    EXPECT_EQ(text(large.response.json().at("digest")), digest(over));
  }
  // A path no route has gets the default limit.
  const auto unknown = post_once("/nowhere", over, false);
  EXPECT_EQ(unknown.response.status, 413);
  EXPECT_TRUE(unknown.closed);
}

// What a chunked body carries beside its data (an extension, a trailer) counts against the
// route's limit too: a default route's client cannot make the server hold a mebibyte.
TEST_F(HttpServer, ChunkExtensionsCountAgainstTheRoutesLimit) {
  const auto request = [](std::string_view target) {
    return std::string("POST ") + std::string(target) +
           " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=" +
           std::string(200 * 1024, 'e') + "\r\nx\r\n0\r\n\r\n";
  };
  Connection small(port());
  small.send(request("/small"));
  const auto refused = small.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  Connection large(port());
  ASSERT_TRUE(large.send(request("/large")));
  const auto taken = large.read_response();
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->status, 200) << taken->body;
  EXPECT_EQ(taken->json().at("size"), 1);
}

TEST_F(HttpServer, ContentTypesAndHeadersArriveExactlyAsSet) {
  HttpClient client(port());
  const auto html = client.get("/html");
  EXPECT_EQ(html.status, 200);
  EXPECT_EQ(html.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(html.body, "<!doctype html><p>caf\xc3\xa9</p>");

  const auto prometheus = client.get("/prometheus");
  EXPECT_EQ(prometheus.status, 200);
  EXPECT_EQ(prometheus.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(prometheus.body, "# TYPE things_total counter\nthings_total 3\n");

  const auto plain = client.get("/plain");
  EXPECT_EQ(plain.status, 503);
  EXPECT_EQ(plain.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(plain.header("retry-after"), "120");
  EXPECT_EQ(plain.body, "later\n");

  const auto moved = client.get("/moved");
  EXPECT_EQ(moved.status, 303);
  EXPECT_EQ(moved.header("location"), "/elsewhere?x=1&y=%20");
  EXPECT_EQ(moved.body, "");

  const auto limited = client.get("/limited");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("content-type"), "application/json");
  EXPECT_EQ(limited.body, R"({"detail":"Too many requests"})");
  EXPECT_EQ(limited.header("retry-after"), "7");
  EXPECT_EQ(limited.header("x-ratelimit-limit"), "100");
  EXPECT_EQ(limited.header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(limited.header("x-ratelimit-reset"), "1700000000");

  for (const auto* response : {&html, &prometheus, &plain, &moved, &limited}) {
    EXPECT_EQ(response->header("x-request-id").size(), 16u);  // from the RequestIds step
    EXPECT_NE(response->header("connection"), "close");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpServer, A401FromAHandlerCarriesOnlyTheHeadersItSet) {
  HttpClient client(port());
  const auto bare = client.get("/unauthorized");
  EXPECT_EQ(bare.status, 401);
  EXPECT_EQ(bare.body, R"({"detail":"Who are you?"})");
  EXPECT_EQ(bare.headers.count("www-authenticate"), 0u) << "the server inferred a challenge";

  const auto challenged = client.get("/challenge");
  EXPECT_EQ(challenged.status, 401);
  EXPECT_EQ(challenged.header("www-authenticate"), R"(Bearer realm="tests")");
}

TEST_F(HttpServer, HandlersReadAnyHeaderInAnyCaseTheClientAndTheRequestId) {
  HttpClient client(port());
  const auto given = client.get(
      "/echo?q=a%20b&r=2",
      {{"x-CUSTOM-thing", "Value 1"}, {"X-Other", "two"}, {"X-Request-Id", "echo-id-1"}});
  ASSERT_EQ(given.status, 200) << given.body;
  const auto json = given.json();
  EXPECT_EQ(text(json.at("lower")), "Value 1");
  EXPECT_EQ(text(json.at("upper")), "Value 1");
  EXPECT_EQ(text(json.at("mixed")), "Value 1");
  EXPECT_EQ(text(json.at("other")), "two");
  EXPECT_EQ(text(json.at("missing")), "");
  EXPECT_EQ(text(json.at("client")), "127.0.0.1");
  EXPECT_EQ(text(json.at("request_id")), "echo-id-1");
  EXPECT_EQ(given.header("x-request-id"), "echo-id-1");
  EXPECT_EQ(text(json.at("path")), "/echo");
  EXPECT_EQ(text(json.at("query")), "q=a%20b&r=2");
  EXPECT_EQ(text(json.at("q")), "a b");
  EXPECT_TRUE(json.at("absent").is_null());
  EXPECT_EQ(text(json.at("method")), "GET");
  EXPECT_EQ(json.at("has_route"), json::value(true));
  EXPECT_EQ(json.at("has_identity"), json::value(false));  // an open route has no caller

  // Without an id of the caller's, the handler sees the one made for the request.
  const auto made = client.get("/echo");
  ASSERT_EQ(made.status, 200);
  EXPECT_EQ(made.header("x-request-id").size(), 16u);
  EXPECT_EQ(text(made.json().at("request_id")), made.header("x-request-id"));
  EXPECT_TRUE(made.json().at("q").is_null());
}

// A query parameter is read from its own `key=value`: an escape that is not one elsewhere, or in
// it, costs nothing else (a query refused whole would read as none: an admin's entity_id gone).
// As FastAPI reads one: '+' is a space, and the last of a name counts.
TEST_F(HttpServer, QueryParametersAreReadOneByOne) {
  HttpClient client(port());
  const std::pair<const char*, const char*> cases[] = {
      {"/echo?x=%zz&q=a%20b", "a b"}, {"/echo?x=%&q=y", "y"},
      {"/echo?q=100%", "100%"},       {"/echo?q=%E2%82%AC", "\xe2\x82\xac"},
      {"/echo?q=a|b&x=%7", "a|b"},    {"/echo?q", ""},
      {"/echo?q=1&q=2", "2"},         {"/echo?%71=encoded%20key", "encoded key"},
      {"/echo?q=a=b", "a=b"},         {"/echo?&&q=z&", "z"},
      {"/echo?q=a+b%2B", "a b+"}};
  for (const auto& [target, q] : cases) {
    SCOPED_TRACE(target);
    const auto response = client.get(target);
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(text(response.json().at("q")), q);
  }
}

// Fields after a chunked body (a trailer) are not headers: a header a proxy checked or stripped
// cannot be sent there instead. The header's own fields stay, also when a trailer field repeats
// one's name (Beast files it beside that one).
TEST_F(HttpServer, TrailerFieldsAreNotHeaders) {
  Connection connection(port());
  ASSERT_TRUE(connection.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Other: header\r\n"
      "X-Missing: last\r\n\r\n2\r\n{}\r\n0\r\nX-Custom-Thing: trailer\r\nX-Other: "
      "trailer\r\n\r\n"));
  const auto response = connection.read_response();
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(text(response->json().at("lower")), "");
  EXPECT_EQ(text(response->json().at("other")), "header");
  EXPECT_EQ(text(response->json().at("missing")), "last");
  EXPECT_EQ(connection.exchange({.method = "GET", .target = "/echo"}).status, 200);  // goes on
}

// A trailer as large as the largest route's buffer allows (a quarter of a million fields), after
// a header of four thousand: dropped, field by field, in well under a second of the thread's
// time (a lookup of each in a plain list of the header's took seconds, every other connection
// of the thread waiting).
TEST_F(HttpServer, AHugeTrailerIsDroppedQuickly) {
  std::string request = "POST /large HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n";
  for (int i = 0; i < 3500; ++i) request += "a:\r\n";
  request += "\r\n1\r\nx\r\n0\r\n";
  for (int i = 0; i < 250'000; ++i) request += "b:\r\n";
  request += "\r\n";
  Connection connection(port());
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(connection.send(request));
  const auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200) << response->body;
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
}

TEST_F(HttpServer, PathParametersAreDecodedAndNeverEmpty) {
  HttpClient client(port());
  const auto spaced = client.get("/things/a%20b/parts");
  ASSERT_EQ(spaced.status, 200) << spaced.body;
  EXPECT_EQ(text(spaced.json().at("id")), "a b");
  EXPECT_EQ(text(spaced.json().at("none")), "");
  const auto slash = client.get("/things/a%2Fb/parts");
  ASSERT_EQ(slash.status, 200) << slash.body;
  EXPECT_EQ(text(slash.json().at("id")), "a/b");

  for (const char* target :
       {"/things//parts", "/things/parts", "/things/a/b/parts", "/things/a/parts/", "/things/a"}) {
    SCOPED_TRACE(target);
    const auto response = client.get(target);
    EXPECT_EQ(response.status, 404) << response.body;
    EXPECT_EQ(response.body, R"({"detail":"Not Found"})");
  }
  const auto wrong_method = client.post("/things/a/parts", "{}");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow"), "GET, HEAD");
}

// The header and I/O timeouts bound how long a client takes to send, not how long the server
// takes to answer: a handler slower than both (a provider's call) still gets its answer out, on a
// connection that had been idle before the request too.
TEST_F(HttpServer, AHandlerSlowerThanTheClientTimeoutsIsAnswered) {
  Connection connection(port());
  std::this_thread::sleep_for(kClientTimeout / 2);
  const auto sent = std::chrono::steady_clock::now();
  const auto posted = connection.exchange({.method = "POST", .target = "/slow", .body = "12345"});
  EXPECT_GE(std::chrono::steady_clock::now() - sent, kSlowHandler);
  EXPECT_EQ(posted.status, 200);
  EXPECT_EQ(json::parse(posted.body).at("size"), 5);
  EXPECT_EQ(connection.exchange({.method = "POST", .target = "/slow"}).status, 200);
}

TEST_F(HttpServer, AThrowingHandlerIs500WithoutItsMessageAndTheConnectionGoesOn) {
  HttpClient client(port());
  const auto response = client.post("/throws", "{}");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"detail":"Internal server error"})");
  EXPECT_NE(response.header("connection"), "close");
  EXPECT_EQ(client.get("/html").status, 200);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_TRUE(e2e::eventually(
      [&] { return server().log().find("secret-internal-detail") != std::string::npos; }, 2s))
      << "the cause belongs in the server's log:\n"
      << server().log();
}

TEST_F(HttpServer, TheAccessLogNamesTheRoutePatternAndSeesTheServersOwnAnswers) {
  HttpClient client(port());
  EXPECT_EQ(client.get("/things/a%20b/parts", {{"X-Request-Id", "log-1"}}).status, 200);
  EXPECT_EQ(client.get("/nope", {{"X-Request-Id", "log-2"}}).status, 404);
  EXPECT_EQ(
      post_once("/small", std::string(kJsonBodyLimit + 1, 'x'), true, {{"X-Request-Id", "log-3"}})
          .response.status,
      413);
  std::vector<json::object> lines;
  const auto read_lines = [&] {
    lines = e2e::json_lines(server().access_log());
    return lines.size() >= 3;
  };
  ASSERT_TRUE(e2e::eventually(read_lines, 3s)) << server().access_log();
  ASSERT_EQ(lines.size(), 3u) << server().access_log();
  const auto line_of = [&](std::string_view id) -> const json::object& {
    for (const auto& line : lines)
      if (line.at("request_id") == json::value(json::string(id))) return line;
    throw std::runtime_error("no line for " + std::string(id));
  };
  EXPECT_EQ(line_of("log-1").at("route"), json::value("/things/{id}/parts"));
  EXPECT_EQ(line_of("log-1").at("status"), json::value(200));
  EXPECT_TRUE(line_of("log-2").at("route").is_null());
  EXPECT_EQ(line_of("log-2").at("status"), json::value(404));
  EXPECT_EQ(line_of("log-3").at("route"), json::value("/small"));
  EXPECT_EQ(line_of("log-3").at("method"), json::value("POST"));
  EXPECT_EQ(line_of("log-3").at("status"), json::value(413));
}

TEST_F(HttpServer, MetricsCountEveryAnswerByRouteAndStatus) {
  HttpClient client(port());
  EXPECT_EQ(client.get("/html").status, 200);
  EXPECT_EQ(client.get("/html").status, 200);
  EXPECT_EQ(client.get("/nope").status, 404);
  EXPECT_EQ(client.post("/html", "{}").status, 405);
  EXPECT_EQ(client.post("/throws", "{}").status, 500);
  EXPECT_EQ(post_once("/small", std::string(kJsonBodyLimit + 1, 'x'), false).response.status, 413);
  const auto stats = client.get("/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  const auto expected = json::parse(R"([
    {"route":"/small","method":"POST","status":413,"requests":1},
    {"route":"/html","method":"GET","status":200,"requests":2},
    {"route":"/throws","method":"POST","status":500,"requests":1},
    {"route":"","method":"OTHER","status":404,"requests":1},
    {"route":"","method":"OTHER","status":405,"requests":1}
  ])");
  EXPECT_EQ(stats.json(), expected) << stats.body;
}

TEST_F(HttpServer, SigtermEndsTheServerWithExitCode0) {
  HttpClient client(port());
  EXPECT_EQ(client.get("/html").status, 200);
  EXPECT_EQ(server().stop(), 0) << server().log();
  EXPECT_TRUE(e2e::connection_refused(port()));
}

// SIGTERM while a handler works: the drain bounds the wait for clients, not for the handler,
// whose answer still goes out (its work is done either way); then the server exits 0.
TEST_F(HttpServer, SigtermWaitsForAHandlerPastTheDrainAndSendsItsAnswer) {
  Connection connection(port());
  ASSERT_TRUE(connection.send(HttpRequest{.method = "POST", .target = "/slow"}));
  std::this_thread::sleep_for(300ms);  // the handler is at work
  auto stopped = std::async(std::launch::async, [&] { return server().stop(10s); });
  const auto answer = connection.read_response();
  ASSERT_TRUE(answer) << "the answer was lost";
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(stopped.get(), 0) << server().log();
}

// More connections than the process's open-file limit allows: the server takes as many as the
// limit leaves and turns the rest away at once, rather than failing accept() on each (and logging
// it every 50 ms); once they go, it serves again.
TEST(HttpServerLimits, ConnectionsBeyondTheOpenFileLimitAreTurnedAway) {
  ForkedServer server([](ForkedServer::Child& child) {
    const rlimit limit{200, 200};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) throw std::runtime_error("setrlimit failed");
    serve_test_routes(child);
  });
  {
    std::vector<std::unique_ptr<Connection>> flood;
    for (int i = 0; i < 300; ++i) flood.push_back(std::make_unique<Connection>(server.port()));
    int served = 0;
    for (auto& connection : flood) {
      connection->send(HttpRequest{.method = "GET", .target = "/echo"});
      if (auto response = connection->read_response(); response && response->status == 200)
        ++served;
    }
    EXPECT_GT(served, 0);
    EXPECT_LT(served, 200);
  }
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return HttpClient(server.port()).get("/echo").status == 200;
        } catch (const std::exception&) {
          return false;  // still turned away
        }
      },
      5s, 100ms));
  EXPECT_THAT(server.log(), Not(HasSubstr("accept:")));
}

// A flood on the main socket leaves a socket served beside it (/metrics's) its own connections.
TEST(HttpServerLimits, AFloodOfTheMainSocketLeavesTheSideSocketServed) {
  ForkedServer server([](ForkedServer::Child& child) {
    const rlimit limit{200, 200};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) throw std::runtime_error("setrlimit failed");
    const RouteMetrics* metrics_ref = nullptr;
    const Router router = test_routes(metrics_ref);
    RequestIds request_ids;
    const Chain<RequestIds> chain(request_ids);
    Server http(ServerOptions{.threads = 2}, ListeningSocket("127.0.0.1", 0), router, chain);
    ListeningSocket side("127.0.0.1", 0);
    std::ofstream(child.dir + "/side_port") << side.port();
    http.also_serve(std::move(side), router, chain);
    http.run([&] { child.listening(http.port()); });
  });
  unsigned short side_port = 0;
  std::ifstream(server.dir() + "/side_port") >> side_port;
  ASSERT_NE(side_port, 0);
  std::vector<std::unique_ptr<Connection>> flood;
  for (int i = 0; i < 300; ++i) flood.push_back(std::make_unique<Connection>(server.port()));
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return HttpClient(server.port()).get("/echo").status != 200;
        } catch (const std::exception&) {
          return true;  // turned away: the main socket is full
        }
      },
      5s, 100ms));
  EXPECT_EQ(HttpClient(side_port).get("/echo").status, 200);
}

}  // namespace
}  // namespace billing::http_test
