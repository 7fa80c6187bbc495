// End-to-end tests of the HTTP server itself: connections, limits, malformed input, timeouts,
// shutdown on signals, and health while the database goes away and comes back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <filesystem>

#include <signal.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "client.hpp"
#include "http/route.hpp"
#include "storage/postgres/connection.hpp"

namespace billing::e2e {
namespace {

using Steady = std::chrono::steady_clock;
using testing::HasSubstr;

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kJsonLimit = 64 * 1024;  // what a client is told JSON routes take
static_assert(kJsonLimit == kJsonBodyLimit && kMiB == kLargeBodyLimit);

std::string plan_request_head(const std::string& token, const std::string& csrf, std::size_t length,
                              std::string_view extra_headers = "") {
  return "POST /billing/plan/select HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
         "\r\nX-CSRF-Token: " + csrf +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) +
         "\r\n" + std::string(extra_headers) + "\r\n";
}

Milliseconds since(Steady::time_point start) {
  return std::chrono::duration_cast<Milliseconds>(Steady::now() - start);
}

// ---------------------------------------------------------------------------------------------
// HTTP behaviour, on one server shared by the suite

class E2eHttp : public SharedServer {};

TEST_F(E2eHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
  HttpClient client(port());
  const auto token = sign_token(hospital_user(unique_id("hosp")));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(client.get("/billing/health").status, 200);
    EXPECT_EQ(client.get("/billing/plan", bearer(token)).status, 200);
    const auto refused = client.post("/billing/plan/select", "{}", bearer(token));
    EXPECT_EQ(refused.status, 403) << refused.body;  // no CSRF token: refused, connection kept
    EXPECT_NE(refused.header("connection"), "close");
    EXPECT_EQ(client.get("/nope").status, 404);
  }
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(E2eHttp, ConnectionCloseAndHttp10EndTheConnection) {
  const struct {
    const char* name;
    HttpRequest request;
  } cases[] = {
      {"Connection: close",
       {.method = "GET", .target = "/billing/health", .headers = {{"Connection", "close"}}}},
      {"HTTP/1.0", {.method = "GET", .target = "/billing/health", .version = 10}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Connection connection(port());
    const auto response = connection.exchange(c.request);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.header("connection"), "close");
    EXPECT_TRUE(connection.wait_closed(2s));
  }
}

TEST_F(E2eHttp, PipelinedRequestsAreAnsweredInOrder) {
  Connection connection(port());
  ASSERT_TRUE(
      connection.send("GET /billing/health HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /billing/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  for (int status : {200, 404, 405}) {
    const auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, status) << response->body;
  }
}

TEST_F(E2eHttp, HeadIsAnsweredWithoutABody) {
  // Whatever the status, a response to HEAD carries no content (RFC 9110 9.3.2): content would be
  // read as the start of the next response on the connection.
  // A GET route answers HEAD as it answers GET, with the same status and length.
  for (const auto& [target, status] :
       std::vector<std::pair<std::string, int>>{{"/billing/health", 200}, {"/nope", 404}}) {
    SCOPED_TRACE(target);
    Connection connection(port());
    ASSERT_TRUE(connection.send(HttpRequest{.method = "HEAD", .target = target}));
    const auto head = connection.read_response(true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, status);
    EXPECT_TRUE(head->body.empty());
    ASSERT_TRUE(connection.send(HttpRequest{.method = "GET", .target = "/billing/health"}));
    const auto next = connection.read_response();
    ASSERT_TRUE(next) << "the response to HEAD carried content: the next response is unreadable";
    EXPECT_EQ(next->status, 200) << next->body;
  }
}

TEST_F(E2eHttp, UnknownRoutesAre404) {
  HttpClient client(port());
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/nope"},
           {"POST", "/nope"},
           {"GET", "/"},
           {"GET", "/billing"},
           {"GET", "/billing/plan/"},
           {"GET", "/BILLING/PLAN"},
           {"PUT", "/nope"},
       }) {
    SCOPED_TRACE(method + " " + target);
    const auto response = client.send({.method = method, .target = target});
    EXPECT_EQ(response.status, 404);
    EXPECT_EQ(response.body, R"({"detail":"Not Found"})");
    EXPECT_EQ(response.header("content-type"), "application/json");
  }
}

TEST_F(E2eHttp, WrongMethodIs405WithAllow) {
  HttpClient client(port());
  const struct {
    const char* method;
    const char* target;
    const char* allow;
  } cases[] = {
      {"POST", "/billing/health", "GET, HEAD"},
      {"POST", "/billing/plan", "GET, HEAD"},
      {"GET", "/billing/plan/select", "POST"},
      {"GET", "/billing/services/select", "POST"},
      {"POST", "/billing/plan/current", "GET, HEAD"},
      {"POST", "/csrf-token", "GET, HEAD"},
      {"DELETE", "/billing/plan", "GET, HEAD"},
      {"PUT", "/billing/plan/select", "POST"},
      {"HEAD", "/billing/plan/select", "POST"},
      // Two patterns fit: the literal one takes POST, /stripe/subscription/{sub_id} GET.
      {"DELETE", "/stripe/subscription/cancel", "GET, HEAD, POST"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    const auto response = client.send({.method = c.method, .target = c.target});
    EXPECT_EQ(response.status, 405);
    EXPECT_EQ(response.body,
              c.method == std::string_view("HEAD") ? "" : R"({"detail":"Method Not Allowed"})");
    EXPECT_EQ(response.header("allow"), c.allow);
  }
}

// Read as absent, a query with one bad escape would drop every parameter, and answer for what
// the caller did not ask: its own plan rather than 403 for another's, a page of a size refused.
TEST_F(E2eHttp, ABadEscapeInAQueryCostsOnlyItsOwnParameter) {
  HttpClient client(port());
  const auto hospital = unique_id("hosp");
  const auto own = bearer(sign_token(hospital_user(hospital)));
  ASSERT_EQ(client.get("/billing/plan", own).status, 200);
  EXPECT_EQ(
      client.get("/billing/plan/current?entity_id=" + unique_id("other") + "&x=%zz", own).status,
      403);
  const auto admin = bearer(sign_token(admin_user()));
  // Read, the entity_id names a hospital without a plan yet (else: 422, entity_id missing).
  const auto plan = client.get("/billing/plan/current?x=%&entity_id=" + hospital, admin);
  EXPECT_EQ(plan.status, 404);
  EXPECT_EQ(plan.body, R"({"detail":"Hospital plan not found"})");
  EXPECT_EQ(client.get("/stripe/admin/customers?limit=500&x=%", admin).status, 422);
}

// RFC 9110 10.1.1: a server ignores an HTTP/1.0 client's 100-continue, which it cannot know.
TEST_F(E2eHttp, AnHttp10ClientIsSentNo100Continue) {
  Connection connection(port());
  const auto response = connection.exchange({.method = "POST",
                                             .target = "/stripe/webhook",
                                             .body = "{}",
                                             .headers = {{"Expect", "100-continue"}},
                                             .version = 10});
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body, R"({"detail":"Invalid webhook signature"})");
}

TEST_F(E2eHttp, JsonBodiesOverSixtyFourKibibytesAre413AndClosed) {
  // JSON routes take kJsonBodyLimit (64 KiB); only routes that declare more (up to 1 MiB) take
  // more, and no JSON route does.
  const struct {
    const char* name;
    std::size_t size;
    bool chunked;
    int status;  // at the limit: the request gets through to authentication
  } cases[] = {
      {"content-length over", kJsonLimit + 1, false, 413},
      {"chunked over", kJsonLimit + 1, true, 413},
      {"content-length far over", kMiB + 1, false, 413},
      {"chunked far over", kMiB + 1, true, 413},
      {"content-length at limit", kJsonLimit, false, 401},
      {"chunked at limit", kJsonLimit, true, 401},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Connection connection(port());
    connection.send(HttpRequest{.method = "POST",
                                .target = "/billing/plan/select",
                                .body = std::string(c.size, ' '),
                                .headers = {{"Content-Type", "application/json"}},
                                .chunked = c.chunked});
    const auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, c.status) << response->body;
    if (c.status == 413) {
      EXPECT_EQ(response->body, R"({"detail":"Request body too large"})");
      EXPECT_EQ(response->header("connection"), "close");
      EXPECT_TRUE(connection.wait_closed(2s));
    } else {
      EXPECT_EQ(response->detail_text(), "Not authenticated") << response->body;
      EXPECT_NE(response->header("connection"), "close");
    }
  }
  HttpClient client(port());
  EXPECT_EQ(client.get("/billing/health").status, 200);
}

TEST_F(E2eHttp, MalformedRequestsAre400AndClosed) {
  const struct {
    const char* name;
    std::string bytes;
    int status;
    const char* detail;
    bool closes = true;  // false: the request was well-formed HTTP, only its target is not ours
  } cases[] = {
      {"not http", "GARBAGE\r\n\r\n", 400, "Malformed HTTP request"},
      {"no version", "GET /billing/health\r\n\r\n", 400, "Malformed HTTP request"},
      {"bad header line", "GET /billing/health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400,
       "Malformed HTTP request"},
      {"asterisk target", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed HTTP request",
       false},
      {"absolute-form target of another scheme",
       "GET ftp://x/billing/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Malformed HTTP request",
       false},
      {"a major version not spoken", "GET /billing/health HTTP/2.0\r\nHost: x\r\n\r\n", 505,
       "HTTP version not supported"},
      {"a major version not spoken, its line not ended yet", "GET /billing/health HTTP/3.0", 505,
       "HTTP version not supported"},
      {"a malformed line of another version", "GET /a b HTTP/2.0\r\nHost: x\r\n\r\n", 400,
       "Malformed HTTP request"},
      {"bad content-length",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
       "Malformed HTTP request"},
      {"bad chunk",
       "POST /billing/plan/select HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
       400, "Malformed HTTP request"},
      {"header too large",
       "GET /billing/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'a') +
           "\r\n\r\n",
       431, "Request headers too large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Connection connection(port());
    ASSERT_TRUE(connection.send(c.bytes));
    const auto response = connection.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, c.status) << response->body;
    EXPECT_EQ(response->detail_text(), c.detail) << response->body;
    if (c.closes) {
      EXPECT_TRUE(connection.wait_closed(2s));
    }
  }
  HttpClient client(port());
  EXPECT_EQ(client.get("/billing/health").status, 200);  // and the server is still fine
}

// RFC 9112 3.2.2: a server MUST accept the absolute-form a proxy sends; its path and query are
// the request's, its host is ignored (Host names the server).
TEST_F(E2eHttp, AnAbsoluteFormTargetIsServedAsItsPathAndQuery) {
  Connection connection(port());
  for (const auto* target :
       {"http://x/billing/health", "HTTPS://billing.example:8443/billing/health",
        "http://x/billing/health?probe=1", "http://x/billing/health?a=|{}^`"}) {
    ASSERT_TRUE(connection.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto response = connection.read_response();
    ASSERT_TRUE(response) << target;
    EXPECT_EQ(response->status, 200) << target << ": " << response->body;
  }
  // An empty path is "/"; a path nothing serves is 404 as in origin-form.
  for (const auto* target : {"http://x", "http://x?probe=1", "http://x/nothing-here"}) {
    ASSERT_TRUE(connection.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto response = connection.read_response();
    ASSERT_TRUE(response) << target;
    EXPECT_EQ(response->status, 404) << target << ": " << response->body;
  }
  // The query reaches the route: an admin's entity_id names the plan asked for.
  HttpClient client(port());
  const auto by_origin = client.get("/billing/plan/current?entity_id=nobody-here",
                                    {{"Authorization", "Bearer " + sign_token(admin_user())}});
  ASSERT_TRUE(
      connection.send("GET http://x/billing/plan/current?entity_id=nobody-here HTTP/1.1\r\n"
                      "Host: x\r\nAuthorization: Bearer " +
                      sign_token(admin_user()) + "\r\n\r\n"));
  const auto by_absolute = connection.read_response();
  ASSERT_TRUE(by_absolute);
  EXPECT_EQ(by_absolute->status, by_origin.status);
  EXPECT_EQ(by_absolute->body, by_origin.body);

  // RFC 9110 4.2.1 and 4.2.4: no host, or userinfo, is not an http URI.
  for (const auto* target : {"http:///billing/health", "http://:80/billing/health",
                             "http://u:p@x/billing/health", "http//x/billing/health"}) {
    Connection refused(port());
    ASSERT_TRUE(refused.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto response = refused.read_response();
    ASSERT_TRUE(response) << target;
    EXPECT_EQ(response->status, 400) << target << ": " << response->body;
  }
}

TEST_F(E2eHttp, Http11RequestWithoutHostOrWithTwoIs400) {
  // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request that has no Host header, and to
  // any request with more than one.
  Connection connection(port());
  const auto response = connection.exchange({.method = "GET", .target = "/billing/health"});
  EXPECT_EQ(response.status, 200);  // the control: Connection::send adds Host
  ASSERT_TRUE(connection.send("GET /billing/health HTTP/1.1\r\n\r\n"));
  const auto missing = connection.read_response();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400) << missing->body;
  for (const auto version : {"1.1", "1.0"}) {
    Connection twice(port());
    ASSERT_TRUE(twice.send(std::string("GET /billing/health HTTP/") + version +
                           "\r\nHost: a\r\nHost: b\r\n\r\n"));
    const auto two = twice.read_response();
    ASSERT_TRUE(two);
    EXPECT_EQ(two->status, 400) << version << " " << two->body;
  }
}

// ---------------------------------------------------------------------------------------------
// Timeouts and shutdown, each on a server of its own

class E2eServer : public testing::Test {
 protected:
  void start(Env env = {}) { server_ = BillingServer::for_backend("sqlite", std::move(env)); }
  BillingServer& server() { return *server_; }

  // The server stops on `sig` within `limit` with exit code 0.
  void expect_clean_exit(int sig, Milliseconds limit) {
    const auto sent = Steady::now();
    server().signal(sig);
    const auto code = server().wait_exit(limit);
    ASSERT_TRUE(code) << "still running " << limit.count() << " ms after signal " << sig << "\n"
                      << server().log();
    EXPECT_EQ(*code, 0) << server().log();
    EXPECT_LT(since(sent), limit);
    EXPECT_THAT(server().log(), HasSubstr("stopped"));
  }

 private:
  std::unique_ptr<BillingServer> server_;
};

TEST_F(E2eServer, StalledHeaderIsCutOffAfterTheHeaderTimeout) {
  start({{"HTTP_HEADER_TIMEOUT_MS", "500"}});
  Connection stalled(server().port());
  const auto sent = Steady::now();
  ASSERT_TRUE(stalled.send("GET /billing/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: "));
  std::string received;
  EXPECT_TRUE(stalled.wait_closed(3s, &received));
  EXPECT_GE(since(sent), 400ms);
  EXPECT_EQ(received, "");  // cut off without an answer
  HttpClient client(server().port());
  EXPECT_EQ(client.get("/billing/health").status, 200);
}

TEST_F(E2eServer, TricklingHeaderIsCutOffAfterTheHeaderTimeout) {
  start({{"HTTP_HEADER_TIMEOUT_MS", "500"}});
  Connection trickle(server().port());
  const auto sent = Steady::now();
  ASSERT_TRUE(trickle.send("GET /billing/health HTTP/1.1\r\n"));
  // A header line every 50 ms keeps the connection busy, but the whole header is still late.
  const bool cut_off = eventually([&] { return !trickle.send("X-A: b\r\n"); }, 3s, 50ms);
  EXPECT_TRUE(cut_off);
  EXPECT_GE(since(sent), 400ms);
}

TEST_F(E2eServer, IdleKeepAliveConnectionIsClosedAfterTheHeaderTimeout) {
  start({{"HTTP_HEADER_TIMEOUT_MS", "500"}});
  Connection idle(server().port());
  EXPECT_EQ(idle.exchange({.method = "GET", .target = "/billing/health"}).status, 200);
  EXPECT_TRUE(idle.wait_closed(3s));
}

TEST_F(E2eServer, SigtermWhileARequestIsInFlightAnswersItThenExits0) {
  start();
  const auto hospital = unique_id("hosp");
  const auto token = sign_token(hospital_user(hospital));
  std::string csrf;
  {
    HttpClient client(server().port());
    csrf = fetch_csrf_token(client, token);
  }
  const std::string body = R"({"plan_type":"lite","id":")" + hospital + R"("})";
  Connection connection(server().port());
  // The head, then half the body: the server has the request and waits for the rest. The
  // `100 Continue` it sends proves it has read the head.
  ASSERT_TRUE(
      connection.send(plan_request_head(token, csrf, body.size(), "Expect: 100-continue\r\n") +
                      body.substr(0, body.size() / 2)));
  const auto interim = connection.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);

  server().signal(SIGTERM);
  ASSERT_TRUE(server().wait_for_log("finishing requests in flight", 5s)) << server().log();
  EXPECT_TRUE(eventually([&] { return connection_refused(server().port()); }, 5s))
      << "still accepting connections after SIGTERM";
  EXPECT_FALSE(server().wait_exit(0ms)) << "exited with a request in flight";

  ASSERT_TRUE(connection.send(body.substr(body.size() / 2)));
  const auto response = connection.read_response();
  ASSERT_TRUE(response) << server().log();
  EXPECT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(text(response->json().at("hospital_id")), hospital);
  EXPECT_EQ(response->header("connection"), "close");
  const auto code = server().wait_exit(5s);
  ASSERT_TRUE(code) << server().log();
  EXPECT_EQ(*code, 0) << server().log();
}

TEST_F(E2eServer, SigtermWithAnIdleConnectionExits0Quickly) {
  start();
  Connection idle(server().port());
  EXPECT_EQ(idle.exchange({.method = "GET", .target = "/billing/health"}).status, 200);
  expect_clean_exit(SIGTERM, 2s);
  EXPECT_TRUE(idle.wait_closed(1s));
}

TEST_F(E2eServer, SigtermWithoutConnectionsExits0Quickly) {
  start();
  expect_clean_exit(SIGTERM, 2s);
}

TEST_F(E2eServer, SigintExits0Quickly) {
  start();
  expect_clean_exit(SIGINT, 2s);
}

// ---------------------------------------------------------------------------------------------
// Health while PostgreSQL goes away and comes back (a private PostgreSQL, to stop and start)

class E2ePostgresOutage : public testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(E2ePostgresOutage);

std::vector<std::string> postgres_only() {
  std::vector<std::string> out;
  for (const auto& backend : backends())
    if (backend == "postgres") out.push_back(backend);
  return out;
}

TEST_P(E2ePostgresOutage, HealthFollowsTheDatabase) {
  PrivatePostgres postgres;
  BillingServer server({.database_url = postgres.url(), .env = {}});
  HttpClient client(server.port());
  const auto health_is = [&](int status) {
    try {
      return client.get("/billing/health").status == status;
    } catch (const std::exception&) {
      return false;
    }
  };
  ASSERT_TRUE(health_is(200));

  postgres.stop();
  ASSERT_TRUE(eventually([&] { return health_is(503); }, 5s, 100ms)) << server.log();
  const auto down = client.get("/billing/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.body, R"({"detail":"Service unavailable"})");

  postgres.start();
  EXPECT_TRUE(eventually([&] { return health_is(200); }, 10s, 100ms)) << server.log();
  EXPECT_FALSE(server.wait_exit(0ms)) << "billing stopped while the database was away";
}

// A server that takes no more writes (a standby, as after a failover gone wrong; or a full disk):
// writes answer 500 and health 503, until it takes writes again.
TEST_P(E2ePostgresOutage, HealthFollowsWhetherTheServerTakesWrites) {
  PrivatePostgres postgres;
  BillingServer server({.database_url = postgres.url(), .env = {}});
  HttpClient client(server.port());
  ASSERT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-0")))).status, 200);
  PostgresConnection admin(postgres.url());
  const auto read_only = [&](bool on) {
    admin.exec(on ? "ALTER SYSTEM SET default_transaction_read_only = on"
                  : "ALTER SYSTEM RESET default_transaction_read_only");
    admin.exec("SELECT pg_reload_conf()");
  };

  read_only(true);
  HttpResponse write;
  ASSERT_TRUE(eventually(
      [&] {
        write = client.get("/billing/plan", bearer(sign_token(hospital_user(unique_id("h")))));
        return write.status != 200;
      },
      5s, 50ms));
  EXPECT_EQ(write.status, 500) << write.body;
  EXPECT_EQ(write.body, R"({"detail":"Internal server error"})");
  EXPECT_EQ(client.get("/billing/health").status, 503);
  EXPECT_THAT(server.log(), HasSubstr("SQLSTATE 25006"));

  read_only(false);
  EXPECT_TRUE(eventually([&] { return client.get("/billing/health").status == 200; }, 15s, 200ms))
      << server.log();
  EXPECT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-new")))).status, 200);
}

// A SQLite file removed while the service runs (an operator's rm, a volume swapped): health
// answers 503 and writes fail, rather than answer 200 for changes that no restart would find.
TEST(E2eSqliteFile, RemovedWhileRunningFailsHealthAndWrites) {
  BillingServer server({.database_url = "", .env = {}});
  const std::string path = server.database_url().substr(std::string_view("sqlite:///").size());
  HttpClient client(server.port());
  const auto token = sign_token(hospital_user(unique_id("hosp")));
  ASSERT_EQ(client.get("/billing/health").status, 200);
  ASSERT_EQ(client.get("/billing/plan", bearer(token)).status, 200);  // enrolled: a write

  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  const auto health = client.get("/billing/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, R"({"detail":"Service unavailable"})");
  const auto write = client.get("/billing/plan", bearer(sign_token(hospital_user("h-new"))));
  EXPECT_EQ(write.status, 500) << write.body;
  EXPECT_EQ(write.body, R"({"detail":"Internal server error"})");
  EXPECT_THAT(server.log(), HasSubstr("was removed or replaced while the service ran"));
}

// The write-ahead log removed alone: its commits, not yet checkpointed, would be lost at the next
// start.
TEST(E2eSqliteFile, WriteAheadLogRemovedWhileRunningFailsHealthAndWrites) {
  BillingServer server({.database_url = "", .env = {}});
  const std::string path = server.database_url().substr(std::string_view("sqlite:///").size());
  HttpClient client(server.port());
  ASSERT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-1")))).status, 200);
  ASSERT_EQ(client.get("/billing/health").status, 200);

  std::filesystem::remove(path + "-wal");
  EXPECT_EQ(client.get("/billing/health").status, 503);
  const auto write = client.get("/billing/plan", bearer(sign_token(hospital_user("h-2"))));
  EXPECT_EQ(write.status, 500) << write.body;
  EXPECT_EQ(write.body, R"({"detail":"Internal server error"})");
  EXPECT_THAT(server.log(), HasSubstr("-wal was removed or replaced while the service ran"));
}

// A full disk, made by a file size limit on the running service (prlimit): writes answer 500 and
// health 503 until writes work again, which health learns by a write of its own (5 s after the
// last write that failed), as no other write may come (a balancer sends nothing to an unhealthy
// replica). Reads go on.
TEST(E2eSqliteFile, AFullDiskFailsHealthUntilWritesWorkAgain) {
  BillingServer server({.database_url = "", .env = {}});
  const std::string path = server.database_url().substr(std::string_view("sqlite:///").size());
  HttpClient client(server.port());
  ASSERT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-0")))).status, 200);
  // Nothing more fits in the write-ahead log, where every commit goes.
  rlimit limit{.rlim_cur = std::filesystem::file_size(path + "-wal"), .rlim_max = RLIM_INFINITY};
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &limit, nullptr), 0);

  const auto failed = client.get("/billing/plan", bearer(sign_token(hospital_user("h-1"))));
  EXPECT_EQ(failed.status, 500) << failed.body;
  EXPECT_EQ(failed.body, R"({"detail":"Internal server error"})");
  const auto health = client.get("/billing/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, R"({"detail":"Service unavailable"})");
  EXPECT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-0")))).status, 200)
      << "reads go on";

  limit.rlim_cur = RLIM_INFINITY;
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &limit, nullptr), 0);
  // Held 503 for 5 s after the write that failed, though the probe would pass now.
  EXPECT_EQ(client.get("/billing/health").status, 503);
  EXPECT_TRUE(eventually([&] { return client.get("/billing/health").status == 200; }, 15s, 200ms))
      << server.log();
  EXPECT_EQ(client.get("/billing/plan", bearer(sign_token(hospital_user("h-new")))).status, 200);
  EXPECT_FALSE(server.wait_exit(0ms)) << "billing stopped at the file size limit";
}

INSTANTIATE_TEST_SUITE_P(E2e, E2ePostgresOutage, testing::ValuesIn(postgres_only()),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
