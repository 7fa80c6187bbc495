#include "http/server.hpp"

#include <list>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/errors.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using SteadyClock = std::chrono::steady_clock;
// How often a worker looks for connections past their deadline. Deadlines are checked by one
// timer per thread rather than armed per read and write: that saves two timerfd system calls
// on every request, for at most this much lateness in cutting a slow client off.
constexpr std::chrono::milliseconds kSweepInterval{100};

// One thread's share of the server. Everything here is touched only from that thread.
struct Worker {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  struct Live {
    tcp::socket* socket;
    SteadyClock::time_point deadline;  // the sweeper closes the socket after this
    bool idle;                         // between requests: may be closed at once on shutdown
  };
  std::list<Live> sessions;
  bool stopping = false;
  SteadyClock::time_point drain_until = SteadyClock::time_point::max();
  asio::steady_timer sweeper{ioc};
};

Method method_of(http::verb verb) {
  switch (verb) {
    case http::verb::get:
      return Method::get;
    case http::verb::post:
      return Method::post;
    default:
      return Method::other;
  }
}

// Errors that mean the client went away, was cut off, or the socket failed: nothing to answer.
// Only HTTP parse errors other than a message ended early deserve a 4xx.
bool is_quiet_end(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec.category() != http::make_error_code(http::error::end_of_stream).category();
}

Response parse_failure(const beast::error_code& ec) {
  if (ec == http::error::body_limit) return detail_response(413, "Request body too large");
  if (ec == http::error::header_limit) return detail_response(431, "Request headers too large");
  return detail_response(400, "Malformed HTTP request");
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  const Dispatcher& dispatcher;
  std::vector<std::unique_ptr<Worker>> workers;
  unsigned short bound_port = 0;

  Impl(ServerOptions o, const Dispatcher& d) : options(std::move(o)), dispatcher(d) {
    const tcp::endpoint requested(asio::ip::make_address(options.host), options.port);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options.threads); ++i) {
      auto worker = std::make_unique<Worker>();
      auto& acceptor = worker->acceptor;
      const tcp::endpoint endpoint(requested.address(), bound_port ? bound_port : requested.port());
      acceptor.open(endpoint.protocol());
      acceptor.set_option(asio::socket_base::reuse_address(true));
      acceptor.set_option(reuse_port(true));
      acceptor.bind(endpoint);
      acceptor.listen(asio::socket_base::max_listen_connections);
      bound_port = acceptor.local_endpoint().port();
      workers.push_back(std::move(worker));
    }
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, socket] = co_await w.acceptor.async_accept(use_tuple);
      if (ec == asio::error::operation_aborted || w.stopping) co_return;
      if (ec) {
        // Out of file descriptors, typically: pause rather than spin on the same error.
        spdlog::warn("accept: {}", ec.message());
        asio::steady_timer pause(w.ioc, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (w.sessions.size() >= options.max_connections_per_thread) continue;  // drops it
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(w.ioc, session(w, std::move(socket)), asio::detached);
    }
  }

  // Closes the connections whose deadline has passed; ends once shutdown has drained them all.
  asio::awaitable<void> sweep(Worker& w) {
    for (;;) {
      w.sweeper.expires_after(kSweepInterval);
      co_await w.sweeper.async_wait(use_tuple);
      if (w.stopping && w.sessions.empty()) co_return;
      const auto now = SteadyClock::now();
      beast::error_code ignored;
      for (auto& live : w.sessions)
        if (now >= live.deadline) live.socket->close(ignored);
    }
  }

  // The next I/O on this connection must be done within `timeout`, or by the end of the drain.
  void arm(const Worker& w, Worker::Live& live, std::chrono::milliseconds timeout) const {
    live.deadline = std::min(SteadyClock::now() + timeout, w.drain_until);
  }

  // `head`: the answer to a HEAD request, which has the headers of the full answer but no body.
  asio::awaitable<bool> write(const Worker& w, Worker::Live& live, Response response,
                              unsigned version, bool keep_alive, bool head = false) {
    http::response<http::string_body> out{static_cast<http::status>(response.status), version};
    out.set(http::field::content_type, "application/json");
    if (!response.allow.empty()) out.set(http::field::allow, response.allow);
    if (response.status == 401) out.set(http::field::www_authenticate, "Bearer");  // RFC 6750
    out.keep_alive(keep_alive);
    out.body() = std::move(response.body);
    out.prepare_payload();
    if (head) out.body().clear();
    arm(w, live, options.io_timeout);
    auto [ec, written] = co_await http::async_write(*live.socket, out, use_tuple);
    co_return !ec;
  }

  asio::awaitable<void> session(Worker& w, tcp::socket socket) {
    const auto live =
        w.sessions.insert(w.sessions.end(), {&socket, SteadyClock::time_point::max(), true});
    // Unlisted however the session ends, so the sweeper never sees a socket that is gone.
    struct Unlist {
      Worker& w;
      std::list<Worker::Live>::iterator live;
      ~Unlist() { w.sessions.erase(live); }
    } unlist{w, live};
    beast::flat_buffer buffer;
    for (;;) {
      // A fresh parser per request: Beast parsers are not reusable across messages.
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      live->idle = true;
      if (w.stopping) break;
      arm(w, *live, options.header_timeout);
      auto [read_ec, header_bytes] =
          co_await http::async_read_header(socket, buffer, parser, use_tuple);
      live->idle = false;
      if (!read_ec && !parser.is_done()) {
        const auto& header = parser.get();
        arm(w, *live, options.io_timeout);
        if (beast::iequals(header[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, header.version()};
          co_await http::async_write(socket, go_on, use_tuple);
        }
        auto [body_ec, body_bytes] = co_await http::async_read(socket, buffer, parser, use_tuple);
        read_ec = body_ec;
      }
      if (read_ec) {
        if (!is_quiet_end(read_ec)) co_await write(w, *live, parse_failure(read_ec), 11, false);
        break;
      }

      auto& message = parser.get();
      Response response;
      const std::string_view target = message.target();
      if (target.empty() || target.front() != '/' ||
          (message.version() >= 11 && message.find(http::field::host) == message.end())) {
        response = detail_response(400, "Malformed HTTP request");
      } else {
        const auto question = target.find('?');
        Request request{
            .method = method_of(message.method()),
            .path = target.substr(0, question),
            .query = question == std::string_view::npos ? std::string_view{}
                                                        : target.substr(question + 1),
            .body = message.body(),
            .authorization = message[http::field::authorization],
            .csrf_token = message["X-CSRF-Token"],
        };
        response = co_await dispatcher.handle(&request);
      }
      // Decided after the handler: a shutdown that began meanwhile closes the connection.
      const bool keep_alive = message.keep_alive() && !w.stopping;
      const bool sent = co_await write(w, *live, std::move(response), message.version(), keep_alive,
                                       message.method() == http::verb::head);
      if (!sent || !keep_alive) break;
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Stops accepting, ends idle connections now and busy ones after their response (or at the
  // drain deadline); the sweeper then ends, and with it the worker's loop.
  void begin_shutdown(Worker& w) {
    w.stopping = true;
    w.drain_until = SteadyClock::now() + options.drain_timeout;
    beast::error_code ignored;
    w.acceptor.close(ignored);
    for (auto& live : w.sessions) {
      if (live.idle)
        live.socket->cancel(ignored);
      else
        live.deadline = std::min(live.deadline, w.drain_until);
    }
  }
};

Server::Server(ServerOptions options, const Dispatcher& dispatcher)
    : impl_(std::make_unique<Impl>(std::move(options), dispatcher)) {}

Server::~Server() = default;

unsigned short Server::port() const {
  return impl_->bound_port;
}

void Server::run(const std::function<void()>& on_ready) {
  auto& workers = impl_->workers;
  for (auto& w : workers) {
    asio::co_spawn(w->ioc, impl_->accept_loop(*w), asio::detached);
    asio::co_spawn(w->ioc, impl_->sweep(*w), asio::detached);
  }

  asio::signal_set signals(workers.front()->ioc, SIGINT, SIGTERM);
  signals.async_wait([this](const beast::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: finishing requests in flight", signal);
    for (auto& w : impl_->workers)
      asio::post(w->ioc, [this, &w = *w] { impl_->begin_shutdown(w); });
  });
  spdlog::info("listening on http://{}:{} with {} threads", impl_->options.host, impl_->bound_port,
               workers.size());
  if (on_ready) on_ready();

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i)
    threads.emplace_back([&w = *workers[i]] { w.ioc.run(); });
  workers.front()->ioc.run();
  for (auto& t : threads) t.join();
  spdlog::info("stopped");
}

}  // namespace billing
