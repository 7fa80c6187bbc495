#include "client.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "app/app.hpp"
#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "kit/crypto.hpp"
#include "tests/support/test_db.hpp"

extern char** environ;

namespace billing::e2e {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;

// The newest installed PostgreSQL, as scripts/postgres.sh picks it.
std::string postgres_bin() {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto name = entry.path().filename().string();
    const int version = std::atoi(name.c_str());
    if (version > best_version && fs::exists(entry.path() / "bin" / "pg_ctl")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL under /usr/lib/postgresql");
  return best;
}

// PostgreSQL refuses to run as root: then it runs as the postgres user.
std::vector<std::string> as_postgres_owner(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--"});
  return argv;
}

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string executable_dir() {
  return fs::read_symlink("/proc/self/exe").parent_path().string();
}

// argv[0] must be a path. The child gets /dev/null as stdin, `log_path` as stdout and stderr, and
// none of our other descriptors (sockets of other tests must not outlive us in a child).
pid_t spawn(const std::vector<std::string>& argv, char* const* envp, const std::string& log_path,
            const std::string& cwd = {}) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv[0]);
  return pid;
}

// The exit code of `pid` (128 + signal if a signal ended it), or nothing if it is still running
// at the deadline.
std::optional<int> wait_child(pid_t pid, Milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0) return -1;
    if (Steady::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

unsigned short free_port() {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return acceptor.local_endpoint().port();
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Tokens by hand, for the shapes JwtCodec::sign will not produce.
enum class Digest { sha256, sha512 };

std::string hmac(Digest digest, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(digest == Digest::sha256 ? EVP_sha256() : EVP_sha512(), key.data(),
       static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

struct TokenParts {
  boost::json::object header{{"alg", "HS256"}, {"typ", "JWT"}};
  boost::json::object claims;
  Digest digest = Digest::sha256;
  std::string secret{kJwtSecret};
  bool unsigned_token = false;
};

std::string encode(const TokenParts& parts) {
  const std::string input = base64url_encode(boost::json::serialize(parts.header)) + "." +
                            base64url_encode(boost::json::serialize(parts.claims));
  if (parts.unsigned_token) return input + ".";
  return input + "." + base64url_encode(hmac(parts.digest, parts.secret, input));
}

boost::json::object valid_claims() {
  return {{"sub", "forger"},
          {"role", "hospital"},
          {"role_entity_id", "hospital_forged"},
          {"exp", unix_now() + 600}};
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Backends and ids

std::vector<std::string> backends() {
  return testing::test_backends();
}

std::string unique_id(std::string_view prefix) {
  return testing::unique_id(std::string(prefix));
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "billing-e2e-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

namespace {

int finish(pid_t pid, Milliseconds timeout) {
  const auto code = wait_child(pid, timeout);
  if (code) return *code;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

}  // namespace

int run_command(const std::vector<std::string>& argv, const std::string& log_path,
                Milliseconds timeout) {
  return finish(spawn(argv, environ, log_path), timeout);
}

CommandResult run_billing(const std::vector<std::string>& args, const Env& env,
                          Milliseconds timeout) {
  TempDir dir;
  const std::string log_path = dir.path() + "/output.log";
  std::vector<std::string> argv{executable_dir() + "/billing"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> lines;
  for (const auto& [name, value] : env) lines.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& line : lines) envp.push_back(line.data());
  envp.push_back(nullptr);
  const int code = finish(spawn(argv, envp.data(), log_path, dir.path()), timeout);
  return {code, read_file(log_path)};
}

// ---------------------------------------------------------------------------------------------
// The service under test

BillingServer::BillingServer(Options options) {
  database_url_ = options.database_url.empty() ? "sqlite:///" + dir_.path() + "/billing.db"
                                               : options.database_url;
  log_path_ = dir_.path() + "/billing.log";
  // LOG_LEVEL=info: the whole story is in the log a failing test prints.
  std::map<std::string, std::string> env{
      {"HTTP_HEADER_TIMEOUT_MS", "10000"},
      {"LOG_LEVEL", "info"},
      {"PAYMENTS_PROVIDER", "local"},
      // Servers share the PostgreSQL test database: each keeps its local payments apart.
      {"LOCAL_PAYMENTS_ACCOUNT", unique_id("e2e")},
  };
  if (!options.dev) {
    env["JWT_SECRET_KEY"] = kJwtSecret;
    env["CSRF_SECRET_KEY"] = kCsrfSecret;
    env["DATABASE_URL"] = database_url_;
  }
  for (const auto& [name, value] : options.env) env[name] = value;
  std::vector<std::string> lines;
  for (const auto& [name, value] : env) lines.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& line : lines) envp.push_back(line.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv{executable_dir() + "/billing", "serve", "--port", "0"};
  if (options.dev) argv.push_back("--dev");
  pid_ = spawn(argv, envp.data(), log_path_, options.dev ? dir_.path() : std::string());

  // The line main prints once everything it announces (the metrics port too) is written, not the
  // server's own log line, which comes first.
  constexpr std::string_view marker = "billing listening on http://127.0.0.1:";
  const auto deadline = Steady::now() + 15s;
  std::string problem;
  while (problem.empty()) {
    const std::string text = log();
    const auto at = text.find(marker);
    if (at != std::string::npos) {
      const auto digits = at + marker.size();
      const auto end = text.find_first_not_of("0123456789", digits);
      if (end != std::string::npos && end > digits) {
        port_ = static_cast<unsigned short>(std::stoi(text.substr(digits, end - digits)));
        return;
      }
    }
    if (auto code = wait_exit(0ms))
      problem = fmt::format("billing exited with {} before listening:\n{}", *code, text);
    else if (Steady::now() >= deadline)
      problem = "billing did not report `listening on` within 15 s:\n" + text;
    else
      std::this_thread::sleep_for(10ms);
  }
  // The destructor does not run for a constructor that throws: stop the process here.
  if (!exit_code_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  throw std::runtime_error(problem);
}

std::unique_ptr<BillingServer> BillingServer::for_backend(const std::string& backend, Env env) {
  Options options{.database_url = {}, .env = std::move(env)};
  if (backend == "postgres") {
    options.database_url = env_or_empty("BILLING_TEST_POSTGRES_URL");
    if (options.database_url.empty())
      throw std::runtime_error(
          "BILLING_REQUIRE_POSTGRES=1 but BILLING_TEST_POSTGRES_URL is not set: the PostgreSQL "
          "backend cannot be tested");
  } else if (backend != "sqlite") {
    throw std::invalid_argument("unknown backend " + backend);
  }
  return std::make_unique<BillingServer>(std::move(options));
}

BillingServer::~BillingServer() {
  if (exit_code_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

std::string BillingServer::log() const {
  return read_file(log_path_);
}

bool BillingServer::wait_for_log(std::string_view text, Milliseconds timeout) const {
  return eventually([&] { return log().find(text) != std::string::npos; }, timeout, 5ms);
}

void BillingServer::signal(int sig) const {
  if (!exit_code_) kill(pid_, sig);
}

std::optional<int> BillingServer::wait_exit(Milliseconds timeout) {
  if (!exit_code_) exit_code_ = wait_child(pid_, timeout);
  return exit_code_;
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

std::string HttpResponse::header(std::string_view name) const {
  const auto found = headers.find(lower(name));
  return found == headers.end() ? std::string() : found->second;
}

boost::json::value HttpResponse::json() const {
  return boost::json::parse(body);
}

boost::json::value HttpResponse::detail() const {
  const auto value = json();
  const auto* object = value.if_object();
  const auto* found = object ? object->if_contains("detail") : nullptr;
  return found ? *found : boost::json::value(nullptr);
}

std::string HttpResponse::detail_text() const {
  const auto value = detail();
  return value.is_string() ? std::string(value.get_string()) : std::string();
}

std::string text(const boost::json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : boost::json::serialize(value);
}

struct Connection::Impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  Milliseconds timeout;
  std::size_t transferred = 0;  // by the last operation

  explicit Impl(Milliseconds t) : timeout(t) {}

  // Runs one asynchronous operation to completion (or to `limit`): synchronous I/O with a
  // deadline.
  template <class Start>
  beast::error_code run(Start&& start, Milliseconds limit) {
    beast::error_code result = asio::error::would_block;
    transferred = 0;
    stream.expires_after(limit);
    start([this, &result](beast::error_code ec, std::size_t bytes = 0) {
      result = ec;
      transferred = bytes;
    });
    ioc.restart();
    ioc.run();
    return result;
  }
  template <class Start>
  beast::error_code run(Start&& start) {
    return run(std::forward<Start>(start), timeout);
  }
};

Connection::Connection(unsigned short port, Milliseconds timeout)
    : impl_(std::make_unique<Impl>(timeout)) {
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
  const auto ec = impl_->run([&](auto done) {
    impl_->stream.async_connect(endpoint, [done](beast::error_code e) { done(e); });
  });
  if (ec) throw std::runtime_error(fmt::format("connect to port {}: {}", port, ec.message()));
}

Connection::~Connection() = default;

bool Connection::send(std::string_view bytes) {
  return !impl_->run([&](auto done) {
    asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()), done);
  });
}

bool Connection::send(const HttpRequest& request) {
  http::request<http::string_body> message;
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown)
    message.method_string(request.method);
  else
    message.method(verb);
  message.target(request.target);
  message.version(request.version);
  message.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : request.headers) message.insert(name, value);
  message.body() = request.body;
  if (request.chunked)
    message.chunked(true);
  else
    message.prepare_payload();
  return !impl_->run([&](auto done) { http::async_write(impl_->stream, message, done); });
}

std::optional<HttpResponse> Connection::read_response(bool to_head) {
  http::response_parser<http::string_body> parser;
  parser.skip(to_head);
  parser.body_limit(64 * 1024 * 1024);
  const auto ec =
      impl_->run([&](auto done) { http::async_read(impl_->stream, impl_->buffer, parser, done); });
  if (ec) return std::nullopt;
  const auto& message = parser.get();
  HttpResponse response;
  response.status = static_cast<int>(message.result_int());
  for (const auto& field : message) response.headers[lower(field.name_string())] = field.value();
  response.body = message.body();
  if (!message.keep_alive()) response.headers.emplace("connection", "close");
  return response;
}

HttpResponse Connection::exchange(const HttpRequest& request) {
  if (!send(request))
    throw std::runtime_error("could not send " + request.method + " " + request.target);
  auto response = read_response(request.method == "HEAD");
  if (!response)
    throw std::runtime_error("no response to " + request.method + " " + request.target);
  return *response;
}

bool Connection::wait_closed(Milliseconds timeout, std::string* received) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<Milliseconds>(deadline - Steady::now());
    if (left <= 0ms) return false;
    const auto ec = impl_->run(
        [&](auto done) { impl_->stream.async_read_some(impl_->buffer.prepare(64 * 1024), done); },
        left);
    if (ec == beast::error::timeout) return false;
    impl_->buffer.commit(impl_->transferred);
    if (ec) {
      if (received) *received += beast::buffers_to_string(impl_->buffer.data());
      return true;  // end of stream, reset, or any other end of the connection
    }
  }
}

HttpResponse HttpClient::send(const HttpRequest& request) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !connection_;
    if (fresh) {
      connection_ = std::make_unique<Connection>(port_);
      ++opened_;
    }
    std::optional<HttpResponse> response;
    if (connection_->send(request)) response = connection_->read_response(request.method == "HEAD");
    if (response) {
      if (response->header("connection") == "close") connection_.reset();
      return *response;
    }
    connection_.reset();
    // A kept-alive connection the server has since closed is retried once, on a new one.
    if (fresh || attempt > 0)
      throw std::runtime_error("no response to " + request.method + " " + request.target);
  }
}

HttpResponse HttpClient::get(std::string target, Headers headers) {
  return send(
      {.method = "GET", .target = std::move(target), .body = {}, .headers = std::move(headers)});
}

HttpResponse HttpClient::post(std::string target, std::string body, Headers headers) {
  headers.emplace_back("Content-Type", "application/json");
  return send({.method = "POST",
               .target = std::move(target),
               .body = std::move(body),
               .headers = std::move(headers)});
}

std::vector<boost::json::object> json_lines(std::string_view log) {
  std::vector<boost::json::object> lines;
  while (!log.empty()) {
    const auto end = log.find('\n');
    if (end == std::string_view::npos) break;  // not complete yet
    const auto line = log.substr(0, end);
    log.remove_prefix(end + 1);
    if (!line.starts_with('{')) continue;
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    if (ec || !value.is_object()) {
      ADD_FAILURE() << "a log line that is not a JSON object: " << line;
      continue;
    }
    lines.push_back(std::move(value.get_object()));
  }
  return lines;
}

bool eventually(const std::function<bool()>& condition, Milliseconds timeout, Milliseconds step) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

bool connection_refused(unsigned short port) {
  try {
    Connection probe(port, 2s);
    return false;
  } catch (const std::runtime_error&) {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Identity

Identity admin_user(std::string_view subject) {
  return {.subject = std::string(subject), .role = Role::admin, .entity_id = {}, .hospital_id = {}};
}

Identity hospital_user(const std::string& hospital_id) {
  return {.subject = "user-" + hospital_id,
          .role = Role::hospital,
          .entity_id = hospital_id,
          .hospital_id = {}};
}

Identity individual_user(const std::string& individual_id) {
  return {.subject = "user-" + individual_id,
          .role = Role::individual,
          .entity_id = individual_id,
          .hospital_id = {}};
}

Identity assistant_user(const std::string& assistant_id, const std::string& hospital_id) {
  return {.subject = "user-" + assistant_id,
          .role = Role::assistant,
          .entity_id = assistant_id,
          .hospital_id = hospital_id};
}

std::string sign_token(const Identity& identity, std::chrono::seconds lifetime) {
  static const SystemClock clock;
  const JwtCodec codec(std::string(kJwtSecret), clock);
  return codec.sign(identity, clock.now() + lifetime);
}

std::string stripe_event(std::string_view type, boost::json::object object) {
  return boost::json::serialize(boost::json::object{{"id", unique_id("evt")},
                                                    {"object", "event"},
                                                    {"type", type},
                                                    {"created", unix_now()},
                                                    {"data", {{"object", std::move(object)}}}});
}

Env stripe_provider_env(const std::string& api_base, std::string_view webhook_secret) {
  return {{"PAYMENTS_PROVIDER", "stripe"},
          {"STRIPE_API_BASE", api_base},
          {"STRIPE_SECRET_KEY", "sk_test_123"},
          {"STRIPE_WEBHOOK_SECRET", std::string(webhook_secret)},
          {"STRIPE_SUCCESS_URL", "https://app.test/paid"},
          {"STRIPE_CANCEL_URL", "https://app.test/cancelled"}};
}

std::string stripe_checkout_completed(const std::string& hospital, const std::string& customer,
                                      const std::string& subscription) {
  return stripe_event("checkout.session.completed", {{"id", unique_id("cs")},
                                                     {"payment_status", "paid"},
                                                     {"customer", customer},
                                                     {"subscription", subscription},
                                                     {"metadata",
                                                      {{"role", "hospital"},
                                                       {"role_entity_id", hospital},
                                                       {"plan", "pro"},
                                                       {"cycle", "monthly"}}}});
}

std::string stripe_signature(const std::string& payload, std::string_view secret, std::int64_t t) {
  TempDir dir;
  const auto file = dir.path() + "/payload";
  std::ofstream(file, std::ios::binary) << payload;
  const auto out = file + ".out";
  const int code =
      run_command({"/usr/bin/python3", BILLING_SOURCE_DIR "/tests/payments/stripe_signer.py",
                   "sign", std::string(secret), file, std::to_string(t)},
                  out);
  std::ifstream in(out);
  std::string header;
  std::getline(in, header);
  if (code != 0) throw std::runtime_error("the Stripe signer failed: " + header);
  return header;
}

std::string sign_claims(const boost::json::value& claims) {
  TokenParts parts;
  parts.claims = claims.as_object();
  return encode(parts);
}

std::string bad_token(BadToken kind) {
  TokenParts parts;
  parts.claims = valid_claims();
  switch (kind) {
    case BadToken::alg_none:
      parts.header["alg"] = "none";
      parts.unsigned_token = true;
      break;
    case BadToken::alg_hs512:
      parts.header["alg"] = "HS512";
      parts.digest = Digest::sha512;
      break;
    case BadToken::bad_signature: {
      std::string token = encode(parts);
      char& first = token[token.rfind('.') + 1];
      first = first == 'A' ? 'B' : 'A';
      return token;
    }
    case BadToken::wrong_secret:
      parts.secret = "not-the-service-secret";
      break;
    case BadToken::expired:
      parts.claims["exp"] = unix_now() - 60;
      break;
    case BadToken::missing_exp:
      parts.claims.erase("exp");
      break;
    case BadToken::unknown_role:
      parts.claims["role"] = "superuser";
      break;
    case BadToken::garbage:
      return "this-is-not-a-jwt";
    case BadToken::assistant_without_hospital:
      parts.claims["role"] = "assistant";
      break;
    case BadToken::missing_role_entity_id:
      parts.claims.erase("role_entity_id");
      break;
    case BadToken::missing_sub:
      parts.claims.erase("sub");
      break;
    case BadToken::exp_not_a_number:
      parts.claims["exp"] = std::to_string(unix_now() + 600);
      break;
    case BadToken::not_three_parts: {
      const std::string token = encode(parts);
      return token.substr(0, token.rfind('.'));
    }
    case BadToken::nbf_in_future:
      parts.claims["nbf"] = unix_now() + 600;
      break;
    case BadToken::iat_in_future:
      parts.claims["iat"] = unix_now() + 600;
      break;
    case BadToken::nbf_not_a_number:
      parts.claims["nbf"] = "soon";
      break;
    case BadToken::iat_not_a_number:
      parts.claims["iat"] = "yesterday";
      break;
  }
  return encode(parts);
}

std::string_view bad_token_name(BadToken kind) {
  switch (kind) {
    case BadToken::alg_none:
      return "alg_none";
    case BadToken::alg_hs512:
      return "alg_hs512";
    case BadToken::bad_signature:
      return "bad_signature";
    case BadToken::wrong_secret:
      return "wrong_secret";
    case BadToken::expired:
      return "expired";
    case BadToken::missing_exp:
      return "missing_exp";
    case BadToken::unknown_role:
      return "unknown_role";
    case BadToken::garbage:
      return "garbage";
    case BadToken::assistant_without_hospital:
      return "assistant_without_hospital";
    case BadToken::missing_role_entity_id:
      return "missing_role_entity_id";
    case BadToken::missing_sub:
      return "missing_sub";
    case BadToken::exp_not_a_number:
      return "exp_not_a_number";
    case BadToken::not_three_parts:
      return "not_three_parts";
    case BadToken::nbf_in_future:
      return "nbf_in_future";
    case BadToken::iat_in_future:
      return "iat_in_future";
    case BadToken::nbf_not_a_number:
      return "nbf_not_a_number";
    case BadToken::iat_not_a_number:
      return "iat_not_a_number";
  }
  return "unknown";
}

void PrintTo(BadToken kind, std::ostream* os) {
  *os << bad_token_name(kind);
}

Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

std::string fetch_csrf_token(HttpClient& client, const std::string& token) {
  const auto response = client.get("/csrf-token", bearer(token));
  if (response.status != 200)
    throw std::runtime_error(fmt::format("GET /csrf-token: {} {}", response.status, response.body));
  const auto json = response.json();
  const auto* csrf = json.as_object().if_contains("csrf_token");
  if (!csrf || !csrf->is_string() || csrf->get_string().empty())
    throw std::runtime_error("GET /csrf-token: no csrf_token in " + response.body);
  return std::string(csrf->get_string());
}

std::string forge_csrf_token(std::string_view subject, TimePoint issued_at,
                             std::string_view secret) {
  const ManualClock clock(issued_at);
  const CsrfTokens tokens(std::string(secret), clock, std::chrono::minutes(60));
  return tokens.issue(subject).token;
}

// ---------------------------------------------------------------------------------------------
// plan_update_history

namespace {

constexpr std::string_view kHistoryColumns =
    "plan_id, changed_by, from_plan_type, to_plan_type, from_status, to_status, from_services, "
    "to_services, reason";

std::vector<HistoryRow> sqlite_history(const std::string& path, std::string_view column,
                                       const std::string& id) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  sqlite3_busy_timeout(db, 5000);
  const std::string sql = fmt::format("SELECT {} FROM plan_update_history WHERE {} = ? ORDER BY id",
                                      kHistoryColumns, column);
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("sqlite prepare: " + message);
  }
  sqlite3_bind_text(statement, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<HistoryRow> rows;
  const auto text = [&](int column_index) {
    const auto* data = sqlite3_column_text(statement, column_index);
    return data ? std::string(reinterpret_cast<const char*>(data)) : std::string();
  };
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW)
    rows.push_back(
        {text(0), text(1), text(2), text(3), text(4), text(5), text(6), text(7), text(8)});
  sqlite3_finalize(statement);
  sqlite3_close(db);
  if (rc != SQLITE_DONE) throw std::runtime_error("sqlite step failed on " + path);
  return rows;
}

std::vector<HistoryRow> postgres_history(const std::string& url, std::string_view column,
                                         const std::string& id) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("postgres connect: ") + PQerrorMessage(connection.get()));
  const std::string sql = fmt::format(
      "SELECT {} FROM plan_update_history WHERE {} = $1 ORDER BY id", kHistoryColumns, column);
  const char* params[] = {id.c_str()};
  std::unique_ptr<PGresult, decltype(&PQclear)> result(
      PQexecParams(connection.get(), sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK)
    throw std::runtime_error(std::string("postgres query: ") + PQerrorMessage(connection.get()));
  std::vector<HistoryRow> rows;
  const auto text = [&](int row, int column_index) {
    return std::string(PQgetvalue(result.get(), row, column_index));  // "" for NULL
  };
  for (int r = 0; r < PQntuples(result.get()); ++r)
    rows.push_back({text(r, 0), text(r, 1), text(r, 2), text(r, 3), text(r, 4), text(r, 5),
                    text(r, 6), text(r, 7), text(r, 8)});
  return rows;
}

}  // namespace

std::vector<HistoryRow> plan_history(const BillingServer& server, std::string_view owner_column,
                                     const std::string& id) {
  if (owner_column != "hospital_id" && owner_column != "individual_id")
    throw std::invalid_argument("plan_history: bad column");
  constexpr std::string_view sqlite_prefix = "sqlite:///";
  const auto& url = server.database_url();
  if (url.starts_with(sqlite_prefix))
    return sqlite_history(url.substr(sqlite_prefix.size()), owner_column, id);
  return postgres_history(url, owner_column, id);
}

std::unique_ptr<Db> open_server_db(const BillingServer& server) {
  Config config;
  config.database_url = server.database_url();
  config.database_pool_size = 2;
  return open_database(config);
}

// ---------------------------------------------------------------------------------------------
// PrivatePostgres

PrivatePostgres::PrivatePostgres() {
  if (geteuid() == 0) {
    const passwd* user = getpwnam("postgres");
    if (!user) throw std::runtime_error("running as root and there is no postgres user");
    if (chown(dir_.path().c_str(), user->pw_uid, user->pw_gid) != 0)
      throw std::system_error(errno, std::generic_category(), "chown " + dir_.path());
  }
  const std::string log = dir_.path() + "/initdb.log";
  const int rc = run_command(
      as_postgres_owner({postgres_bin() + "/initdb", "-D", dir_.path() + "/data", "-A", "trust",
                         "-U", "postgres", "--no-sync", "--no-locale", "-E", "UTF8"}),
      log);
  if (rc != 0) throw std::runtime_error(fmt::format("initdb failed ({}):\n{}", rc, read_file(log)));
  port_ = free_port();
  start();
}

PrivatePostgres::~PrivatePostgres() {
  if (running_) pg_ctl({"stop", "-m", "immediate", "-w"});
}

std::string PrivatePostgres::url() const {
  return fmt::format("postgresql://postgres@127.0.0.1:{}/postgres", port_);
}

int PrivatePostgres::pg_ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{postgres_bin() + "/pg_ctl", "-D", dir_.path() + "/data"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(as_postgres_owner(std::move(argv)), dir_.path() + "/pg_ctl.log");
}

void PrivatePostgres::start() {
  const std::string options =
      fmt::format("-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", port_, dir_.path());
  const int rc =
      pg_ctl({"start", "-w", "-t", "30", "-l", dir_.path() + "/server.log", "-o", options});
  if (rc != 0)
    throw std::runtime_error(fmt::format("pg_ctl start failed ({}):\n{}\n{}", rc,
                                         read_file(dir_.path() + "/pg_ctl.log"),
                                         read_file(dir_.path() + "/server.log")));
  running_ = true;
}

void PrivatePostgres::stop() {
  const int rc = pg_ctl({"stop", "-m", "fast", "-w"});
  if (rc != 0)
    throw std::runtime_error(
        fmt::format("pg_ctl stop failed ({}):\n{}", rc, read_file(dir_.path() + "/pg_ctl.log")));
  running_ = false;
}

BillingServer* SharedServer::server_ = nullptr;

void SharedServer::expect_healthy() {
  HttpClient client(port());
  EXPECT_EQ(client.get("/billing/health").status, 200);
}

}  // namespace billing::e2e
