// The bare group-commit loop that bench/webhooks.sh measures billing's POST /stripe/webhook
// against on SQLite: the least work a durable, idempotent webhook receiver can do, on the same
// disk, in the same run. Not part of billing (it uses none of billing_lib) and not a test.
//
//   STRIPE_WEBHOOK_SECRET=whsec_... bench_group_commit_baseline --db /abs/path.db [--port 0]
//       [--host 127.0.0.1] [--threads N]
//
// - HTTP: Boost.Beast, one io_context per I/O thread (--threads, default: the cores), one
//   acceptor handing connections round-robin to them; keep-alive; bodies up to 1 MiB. Any method
//   or path is treated as POST /stripe/webhook (no routing).
// - Each request: the Stripe-Signature header (t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">,
//   300 s tolerance, any of up to 8 v1 entries) verified with OpenSSL over the raw bytes (400 if
//   wrong), the body parsed with Boost.JSON (400 if it is not an event), then queued for the
//   writer.
// - One SQLite writer thread (WAL, synchronous=FULL, the same as billing's writer): takes every
//   event waiting at that moment, BEGIN IMMEDIATE, per event a SAVEPOINT holding the inbox insert
//   (event id primary key, ON CONFLICT DO NOTHING) and, when the id is new, the payment insert
//   (invoice.payment_succeeded) and the plan update (succeeded: suspended -> active, failed:
//   active -> suspended; only if the event is not older than the plan's last event), then one
//   COMMIT for the batch; then every event of the batch is answered (200, or 500 if its
//   savepoint or the commit failed). No history rows, no audit rows, no routing.
// - Prints `baseline listening on http://HOST:PORT` once bound; SIGTERM/SIGINT stop it, and it
//   prints `baseline: N events in M batches (mean batch B, max X)` on stderr.
//
// The tables (created if missing): inbox(event_id PK, event_type, created, payload, received_at),
// plans(entity_id PK, status, last_event_created, updated_at) -- the bench seeds one row per
// entity -- and payments(id, invoice_id UNIQUE, entity_id, amount, currency, created_at).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr std::int64_t kToleranceSeconds = 300;
constexpr std::size_t kBodyLimit = 1024 * 1024;
constexpr std::size_t kMaxSignatures = 8;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso8601_micros_now() {
  const auto now = std::chrono::system_clock::now();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros % 1000000));
  return out;
}

// --- Stripe-Signature ---------------------------------------------------------------------------

class Verifier {
 public:
  explicit Verifier(std::string secret) : secret_(std::move(secret)) {}

  bool verify(std::string_view header, std::string_view payload) const {
    std::string_view timestamp;
    std::string_view candidates[kMaxSignatures];
    std::size_t count = 0;
    while (!header.empty()) {
      const auto comma = std::min(header.find(','), header.size());
      const auto item = header.substr(0, comma);
      header.remove_prefix(std::min(comma + 1, header.size()));
      const auto equals = item.find('=');
      if (equals == std::string_view::npos) continue;
      const auto key = item.substr(0, equals);
      const auto value = item.substr(equals + 1);
      if (key == "t" && timestamp.empty()) {
        timestamp = value;
      } else if (key == "v1") {
        if (count == kMaxSignatures) return false;
        candidates[count++] = value;
      }
    }
    std::int64_t sent = 0;
    const auto [end, ec] =
        std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), sent);
    if (timestamp.empty() || ec != std::errc{} || end != timestamp.data() + timestamp.size())
      return false;
    const auto now = unix_now();
    if (sent < now - kToleranceSeconds || sent > now + kToleranceSeconds) return false;

    std::string signed_text;
    signed_text.reserve(timestamp.size() + 1 + payload.size());
    signed_text.append(timestamp).append(".").append(payload);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
              reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(),
              digest, &length))
      return false;
    static constexpr char kHex[] = "0123456789abcdef";
    char expected[2 * EVP_MAX_MD_SIZE];
    for (unsigned i = 0; i < length; ++i) {
      expected[2 * i] = kHex[digest[i] >> 4];
      expected[2 * i + 1] = kHex[digest[i] & 15];
    }
    bool matched = false;
    for (std::size_t i = 0; i < count; ++i)
      matched |= candidates[i].size() == 2 * length &&
                 CRYPTO_memcmp(candidates[i].data(), expected, 2 * length) == 0;
    return matched;
  }

 private:
  std::string secret_;
};

// --- the event, as far as the loop needs it ------------------------------------------------------

struct Event {
  std::string id;
  std::string type;
  std::int64_t created = 0;
  std::string payload;
  std::string entity_id;    // data.object.subscription_details.metadata.role_entity_id
  std::string invoice_id;   // data.object.id
  std::int64_t amount = 0;  // data.object.amount_paid
  std::string currency;
};

const json::object* child(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_object()) return &v->get_object();
  return nullptr;
}
std::string text(const json::object* o, std::string_view key) {
  if (!o) return {};
  if (auto* v = o->if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}
std::optional<std::int64_t> integer(const json::object* o, std::string_view key) {
  if (!o) return std::nullopt;
  if (auto* v = o->if_contains(key)) {
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= INT64_MAX)
      return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

std::optional<Event> parse_event(std::string payload) {
  boost::system::error_code ec;
  const auto value = json::parse(payload, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& event = value.get_object();
  Event e;
  e.id = text(&event, "id");
  e.type = text(&event, "type");
  const auto created = integer(&event, "created");
  const auto* data = child(event, "data");
  const auto* object = data ? child(*data, "object") : nullptr;
  if (e.id.empty() || e.type.empty() || !created || !object) return std::nullopt;
  e.created = *created;
  const auto* details = child(*object, "subscription_details");
  e.entity_id = text(details ? child(*details, "metadata") : nullptr, "role_entity_id");
  e.invoice_id = text(object, "id");
  e.amount = integer(object, "amount_paid").value_or(0);
  e.currency = text(object, "currency");
  if (e.currency.empty()) e.currency = "usd";
  e.payload = std::move(payload);
  return e;
}

// --- the writer ----------------------------------------------------------------------------------

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(db) + ": " + sql);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind(int i, std::int64_t n) {
    sqlite3_bind_int64(stmt_, i, n);
    return *this;
  }
  // Runs it to completion; returns the rows it changed.
  int run(sqlite3* db) {
    int rc;
    while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("step: ") + sqlite3_errmsg(db));
    return sqlite3_changes(db);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class Writer {
 public:
  using Done = std::function<void(bool ok)>;

  explicit Writer(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
    exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
    exec(
        "CREATE TABLE IF NOT EXISTS inbox (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, "
        "created INTEGER NOT NULL, payload TEXT NOT NULL, received_at TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS plans (entity_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
        "last_event_created INTEGER, updated_at TEXT);"
        "CREATE TABLE IF NOT EXISTS payments (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "invoice_id TEXT UNIQUE, entity_id TEXT NOT NULL, amount INTEGER NOT NULL, "
        "currency TEXT NOT NULL, created_at TEXT NOT NULL)");
    inbox_ = std::make_unique<Statement>(
        db_,
        "INSERT INTO inbox (event_id, event_type, created, payload, received_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id) DO NOTHING");
    payment_ = std::make_unique<Statement>(
        db_,
        "INSERT INTO payments (invoice_id, entity_id, amount, currency, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (invoice_id) DO NOTHING");
    plan_ = std::make_unique<Statement>(
        db_,
        "UPDATE plans SET status = CASE WHEN status = ?1 THEN ?2 ELSE status END, "
        "last_event_created = ?3, updated_at = ?4 "
        "WHERE entity_id = ?5 AND (last_event_created IS NULL OR last_event_created <= ?3)");
    begin_ = std::make_unique<Statement>(db_, "BEGIN IMMEDIATE");
    commit_ = std::make_unique<Statement>(db_, "COMMIT");
    savepoint_ = std::make_unique<Statement>(db_, "SAVEPOINT unit");
    release_ = std::make_unique<Statement>(db_, "RELEASE SAVEPOINT unit");
    rollback_to_ = std::make_unique<Statement>(db_, "ROLLBACK TO SAVEPOINT unit");
    thread_ = std::thread([this] { run(); });
  }

  ~Writer() {
    stop();
    inbox_.reset();
    payment_.reset();
    plan_.reset();
    begin_.reset();
    commit_.reset();
    savepoint_.reset();
    release_.reset();
    rollback_to_.reset();
    sqlite3_close(db_);
  }

  // Answers what is queued, then ends the writer thread.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  void submit(Event event, Done done) {
    {
      std::lock_guard lock(mutex_);
      waiting_.push_back(Unit{std::move(event), std::move(done), true});
    }
    ready_.notify_one();
  }

  void report() const {
    const auto b = batches_.load();
    const auto e = events_.load();
    std::fprintf(stderr, "baseline: %llu events in %llu batches (mean batch %.1f, max %llu)\n",
                 static_cast<unsigned long long>(e), static_cast<unsigned long long>(b),
                 b ? static_cast<double>(e) / static_cast<double>(b) : 0.0,
                 static_cast<unsigned long long>(max_batch_.load()));
  }

 private:
  struct Unit {
    Event event;
    Done done;
    bool ok;
  };

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(message);
    }
  }

  void run() {
    std::vector<Unit> batch;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) return;  // stopping
        batch.swap(waiting_);
      }
      commit(batch);
      for (auto& unit : batch) unit.done(unit.ok);
      batches_ += 1;
      events_ += batch.size();
      if (batch.size() > max_batch_) max_batch_ = batch.size();
      batch.clear();
    }
  }

  void apply(const Event& e, const std::string& now) {
    const int inserted = inbox_->bind(1, e.id)
                             .bind(2, e.type)
                             .bind(3, e.created)
                             .bind(4, e.payload)
                             .bind(5, now)
                             .run(db_);
    if (inserted == 0) return;  // a duplicate delivery: already applied
    const bool paid = e.type == "invoice.payment_succeeded";
    const bool failed = e.type == "invoice.payment_failed";
    if (!paid && !failed) return;
    if (paid && !e.invoice_id.empty())
      payment_->bind(1, e.invoice_id)
          .bind(2, e.entity_id)
          .bind(3, e.amount)
          .bind(4, e.currency)
          .bind(5, now)
          .run(db_);
    plan_->bind(1, paid ? "suspended" : "active")
        .bind(2, paid ? "active" : "suspended")
        .bind(3, e.created)
        .bind(4, now)
        .bind(5, e.entity_id)
        .run(db_);
  }

  void commit(std::vector<Unit>& batch) {
    try {
      const auto now = iso8601_micros_now();
      begin_->run(db_);
      for (auto& unit : batch) {
        savepoint_->run(db_);
        try {
          apply(unit.event, now);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "baseline: event %s failed: %s\n", unit.event.id.c_str(), e.what());
          unit.ok = false;
          rollback_to_->run(db_);
        }
        release_->run(db_);
      }
      commit_->run(db_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "baseline: batch failed: %s\n", e.what());
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      for (auto& unit : batch) unit.ok = false;
    }
  }

  sqlite3* db_ = nullptr;
  std::unique_ptr<Statement> inbox_, payment_, plan_, begin_, commit_, savepoint_, release_,
      rollback_to_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Unit> waiting_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> batches_{0}, events_{0}, max_batch_{0};
  std::thread thread_;
};

// --- HTTP ----------------------------------------------------------------------------------------

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Writer& writer, const Verifier& verifier)
      : socket_(std::move(socket)), writer_(writer), verifier_(verifier) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(boost::system::error_code ec) {
    if (ec == http::error::body_limit) return reply(http::status::payload_too_large, false);
    if (ec) return close();
    auto request = parser_->release();
    keep_alive_ = request.keep_alive();
    const auto signature = request["Stripe-Signature"];
    if (!verifier_.verify(std::string_view(signature.data(), signature.size()), request.body()))
      return reply(http::status::bad_request, keep_alive_,
                   R"({"detail":"Invalid webhook signature"})");
    auto event = parse_event(std::move(request.body()));
    if (!event)
      return reply(http::status::bad_request, keep_alive_,
                   R"({"detail":"Invalid webhook payload"})");
    writer_.submit(std::move(*event), [self = shared_from_this()](bool ok) {
      asio::post(self->socket_.get_executor(), [self, ok] {
        if (ok)
          self->reply(http::status::ok, self->keep_alive_, R"({"received":true})");
        else
          self->reply(http::status::internal_server_error, self->keep_alive_,
                      R"({"detail":"Webhook processing failed"})");
      });
    });
  }

  void reply(http::status status, bool keep_alive, std::string_view body = "{}") {
    response_ = {};
    response_.result(status);
    response_.version(11);
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(keep_alive);
    response_.body().assign(body.data(), body.size());
    response_.prepare_payload();
    http::async_write(
        socket_, response_,
        [self = shared_from_this(), keep_alive](boost::system::error_code ec, std::size_t) {
          if (ec || !keep_alive) return self->close();
          self->read();
        });
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  Writer& writer_;
  const Verifier& verifier_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool keep_alive_ = true;
};

class Listener {
 public:
  Listener(std::vector<std::unique_ptr<asio::io_context>>& contexts, const tcp::endpoint& at,
           Writer& writer, const Verifier& verifier)
      : contexts_(contexts), acceptor_(*contexts[0]), writer_(writer), verifier_(verifier) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    auto& context = *contexts_[next_++ % contexts_.size()];
    acceptor_.async_accept(context, [this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true));
        std::make_shared<Session>(std::move(socket), writer_, verifier_)->start();
      }
      accept();
    });
  }

  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>>& contexts_;
  tcp::acceptor acceptor_;
  Writer& writer_;
  const Verifier& verifier_;
  std::size_t next_ = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_group_commit_baseline: %s\n"
               "usage: STRIPE_WEBHOOK_SECRET=... bench_group_commit_baseline --db PATH "
               "[--host 127.0.0.1] [--port 0] [--threads N]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", db;
  unsigned short port = 0;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) usage("missing value");
    const std::string value = argv[++i];
    if (arg == "--db")
      db = value;
    else if (arg == "--host")
      host = value;
    else if (arg == "--port")
      port = static_cast<unsigned short>(std::stoi(value));
    else if (arg == "--threads")
      threads = static_cast<unsigned>(std::max(1, std::stoi(value)));
    else
      usage("unknown option");
  }
  if (db.empty()) usage("--db is required");
  const char* secret = std::getenv("STRIPE_WEBHOOK_SECRET");
  if (!secret || !*secret) usage("STRIPE_WEBHOOK_SECRET is not set");

  try {
    const Verifier verifier(secret);
    auto writer = std::make_unique<Writer>(db);
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (unsigned i = 0; i < threads; ++i)
      contexts.push_back(std::make_unique<asio::io_context>(1));
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& c : contexts) guards.push_back(asio::make_work_guard(*c));

    Listener listener(contexts, tcp::endpoint(asio::ip::make_address(host), port), *writer,
                      verifier);
    listener.accept();
    asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) {
      listener.close();
      for (auto& c : contexts) c->stop();
    });
    std::printf("baseline listening on http://%s:%u\n", host.c_str(), listener.port());
    std::fflush(stdout);

    std::vector<std::thread> runners;
    for (unsigned i = 1; i < threads; ++i) runners.emplace_back([&, i] { contexts[i]->run(); });
    contexts[0]->run();
    for (auto& t : runners) t.join();
    // The writer answers what it still holds (posted to the stopped contexts, never run), then
    // the sessions go with their contexts.
    writer->stop();
    writer->report();
    guards.clear();
    contexts.clear();
    writer.reset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_group_commit_baseline: %s\n", e.what());
    return 1;
  }
  return 0;
}
