#pragma once
// The end-to-end harness: runs the real `billing` binary as a child process and talks HTTP/1.1 to
// it over loopback, with tokens signed like a real identity provider would sign them.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/db.hpp"
#include "core/identity.hpp"
#include "kit/clock.hpp"

namespace billing::e2e {

using namespace std::chrono_literals;
using Milliseconds = std::chrono::milliseconds;
using Headers = std::vector<std::pair<std::string, std::string>>;
using Env = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kJwtSecret = "e2e-jwt-secret-0123456789";
inline constexpr std::string_view kCsrfSecret = "e2e-csrf-secret-0123456789";

// ---------------------------------------------------------------------------------------------
// Backends and ids

// "sqlite", then "postgres" when BILLING_TEST_POSTGRES_URL is set; the run fails if
// BILLING_REQUIRE_POSTGRES=1 and it is not (tests/support/test_db.hpp).
std::vector<std::string> backends();
// An id no other test (or earlier run against a shared database) uses: prefix + random suffix.
std::string unique_id(std::string_view prefix);

// A private directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The whole file ("" if it cannot be read).
std::string read_file(const std::string& path);

// Runs argv (argv[0] a path) to completion, output to `log_path`; returns the exit status, or
// -1 if it could not start or did not finish in time (then it is killed).
int run_command(const std::vector<std::string>& argv, const std::string& log_path,
                Milliseconds timeout = 60s);

// Runs `billing ARGS` to completion with exactly `env` as its environment.
struct CommandResult {
  int code = -1;       // -1: did not finish within the timeout
  std::string output;  // stdout and stderr
};
CommandResult run_billing(const std::vector<std::string>& args, const Env& env,
                          Milliseconds timeout = 30s);

// ---------------------------------------------------------------------------------------------
// The service under test

class BillingServer {
 public:
  struct Options {
    std::string database_url;  // empty: a fresh SQLite file in the server's own temp dir
    Env env;                   // added to (or overriding) the defaults
    // `serve --dev` run in the server's temp dir, with no secrets and no DATABASE_URL given:
    // the embedded defaults a newcomer gets.
    bool dev = false;
  };
  explicit BillingServer(Options options);
  // A server on "sqlite" (fresh file) or "postgres" (BILLING_TEST_POSTGRES_URL).
  static std::unique_ptr<BillingServer> for_backend(const std::string& backend, Env env = {});
  ~BillingServer();  // kills the process if it still runs
  BillingServer(const BillingServer&) = delete;
  BillingServer& operator=(const BillingServer&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& database_url() const { return database_url_; }
  const std::string& directory() const { return dir_.path(); }
  std::string log() const;
  // Waits until the log contains `text`.
  bool wait_for_log(std::string_view text, Milliseconds timeout) const;
  void signal(int sig) const;
  // The exit code (128 + signal if killed by one), or nothing if still running after `timeout`.
  std::optional<int> wait_exit(Milliseconds timeout);

 private:
  TempDir dir_;
  std::string database_url_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  unsigned short port_ = 0;
};

// A server shared by the tests of a suite.
class SharedServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = BillingServer::for_backend("sqlite").release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }
  static unsigned short port() { return server_->port(); }
  static BillingServer& server() { return *server_; }

  // The server still answers on a new connection.
  static void expect_healthy();

 private:
  static BillingServer* server_;
};

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(std::string_view name) const;  // "" if absent
  boost::json::value json() const;                  // throws if the body is not JSON
  boost::json::value detail() const;                // json()["detail"], null if absent
  std::string detail_text() const;                  // the detail if it is a string, else ""
};

// A JSON string's text, or any other value as JSON text (for comparing with std::string).
std::string text(const boost::json::value& value);

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  Headers headers;
  bool chunked = false;  // Transfer-Encoding: chunked instead of Content-Length
  unsigned version = 11;
};

// One TCP connection, for tests that need to see the bytes: partial requests, stalls, closes.
class Connection {
 public:
  explicit Connection(unsigned short port, Milliseconds timeout = 10s);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool send(std::string_view bytes);  // false if the write failed
  bool send(const HttpRequest& request);
  // The next response on this connection; nothing on error, timeout or close. A response to
  // HEAD has no body, whatever its Content-Length says.
  std::optional<HttpResponse> read_response(bool to_head = false);
  HttpResponse exchange(const HttpRequest& request);  // throws if no response came
  // Reads (and keeps in `received`) until the peer closes the connection: true if it did within
  // `timeout`.
  bool wait_closed(Milliseconds timeout, std::string* received = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A keep-alive client: reuses its connection while the server keeps it open.
class HttpClient {
 public:
  explicit HttpClient(unsigned short port) : port_(port) {}
  HttpResponse send(const HttpRequest& request);
  HttpResponse get(std::string target, Headers headers = {});
  HttpResponse post(std::string target, std::string body, Headers headers = {});
  std::size_t connections_opened() const { return opened_; }

 private:
  unsigned short port_;
  std::unique_ptr<Connection> connection_;
  std::size_t opened_ = 0;
};

// The complete lines of a log that are JSON objects. Lines that do not start with '{' (stdout's)
// are skipped; one that does but is no JSON object is a test failure.
std::vector<boost::json::object> json_lines(std::string_view log);

// Polls `condition` until it holds (true) or `timeout` passes (false).
bool eventually(const std::function<bool()>& condition, Milliseconds timeout,
                Milliseconds step = 20ms);

// True if nothing accepts TCP connections on the port (any more).
bool connection_refused(unsigned short port);

// ---------------------------------------------------------------------------------------------
// Identity

Identity admin_user(std::string_view subject = "admin-user");
Identity hospital_user(const std::string& hospital_id);
Identity individual_user(const std::string& individual_id);
Identity assistant_user(const std::string& assistant_id, const std::string& hospital_id);

// A valid HS256 token signed with kJwtSecret.
std::string sign_token(const Identity& identity, std::chrono::seconds lifetime = 15min);
// An HS256 token signed with kJwtSecret whose claims are exactly `claims` (a JSON object), for
// claims sign_token does not make (nbf, iat).
std::string sign_claims(const boost::json::value& claims);
// Seconds since the epoch now, for NumericDate claims.
std::int64_t unix_now();

// Tokens a correct service must refuse with 401.
enum class BadToken {
  alg_none,
  alg_hs512,
  bad_signature,
  wrong_secret,
  expired,
  missing_exp,
  unknown_role,
  garbage,
  assistant_without_hospital,
  missing_role_entity_id,
  missing_sub,
  exp_not_a_number,
  not_three_parts,
  nbf_in_future,     // `nbf` ten minutes ahead: "Token is not yet valid"
  iat_in_future,     // `iat` ten minutes ahead: "Token is not yet valid"
  nbf_not_a_number,  // `"nbf":"soon"`
  iat_not_a_number,  // `"iat":"yesterday"`
};
std::string bad_token(BadToken kind);
std::string_view bad_token_name(BadToken kind);
void PrintTo(BadToken kind, std::ostream* os);  // for test names and failure messages
inline constexpr BadToken kAllBadTokens[] = {
    BadToken::alg_none,
    BadToken::alg_hs512,
    BadToken::bad_signature,
    BadToken::wrong_secret,
    BadToken::expired,
    BadToken::missing_exp,
    BadToken::unknown_role,
    BadToken::garbage,
    BadToken::assistant_without_hospital,
    BadToken::missing_role_entity_id,
    BadToken::missing_sub,
    BadToken::exp_not_a_number,
    BadToken::not_three_parts,
    BadToken::nbf_in_future,
    BadToken::iat_in_future,
    BadToken::nbf_not_a_number,
    BadToken::iat_not_a_number,
};

Headers bearer(const std::string& token);
// GET /csrf-token as the bearer of `token`; throws unless it answers 200 with a token.
std::string fetch_csrf_token(HttpClient& client, const std::string& token);
// CSRF tokens made outside the service, with its secret or another one, issued at `issued_at`.
std::string forge_csrf_token(std::string_view subject, TimePoint issued_at,
                             std::string_view secret = kCsrfSecret);

// Stripe webhooks as Stripe sends them: an event of `type` about `object`, with an id of its own
// and `created` now; and the Stripe-Signature header Stripe's own library (Debian's
// python3-stripe, tests/payments/stripe_signer.py) makes for a payload at `t`.
std::string stripe_event(std::string_view type, boost::json::object object);
std::string stripe_signature(const std::string& payload, std::string_view secret, std::int64_t t);
// The service's environment for PAYMENTS_PROVIDER=stripe with Stripe's API at `api_base` (a fake
// or stripe-mock) and webhooks signed with `webhook_secret`.
Env stripe_provider_env(const std::string& api_base, std::string_view webhook_secret);
// checkout.session.completed, paid, for a hospital's monthly pro plan.
std::string stripe_checkout_completed(const std::string& hospital, const std::string& customer,
                                      const std::string& subscription);

// ---------------------------------------------------------------------------------------------
// Storage the API does not show: plan_update_history, read straight from the database.

struct HistoryRow {
  std::string plan_id, changed_by, from_plan_type, to_plan_type, from_status, to_status,
      from_services, to_services, reason;  // NULL reads as ""
};
// The rows of `owner_column` ("hospital_id" or "individual_id") = id, oldest first.
std::vector<HistoryRow> plan_history(const BillingServer& server, std::string_view owner_column,
                                     const std::string& id);

// The server's database, opened as the service opens it, to read through the repositories.
std::unique_ptr<Db> open_server_db(const BillingServer& server);

// ---------------------------------------------------------------------------------------------
// A PostgreSQL server of the test's own (initdb + pg_ctl as the postgres user), to stop and start.

class PrivatePostgres {
 public:
  PrivatePostgres();  // initdb, then start on a free port; throws with the log on failure
  ~PrivatePostgres();
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  std::string url() const;
  void start();
  void stop();  // pg_ctl stop -m fast

 private:
  int pg_ctl(const std::vector<std::string>& args);
  TempDir dir_;
  unsigned short port_ = 0;
  bool running_ = false;
};

}  // namespace billing::e2e
