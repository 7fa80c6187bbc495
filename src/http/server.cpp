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

// One thread's share of the server. Everything here is touched only from that thread.
struct Worker {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  struct Live {
    beast::tcp_stream* stream;
    bool idle;  // between requests: may be closed at once on shutdown
  };
  std::list<Live> sessions;
  bool stopping = false;
  asio::steady_timer drain_deadline{ioc};
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

// Errors that mean the client went away or was too slow: nothing to answer.
bool is_quiet_end(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == beast::error::timeout || ec == asio::error::operation_aborted ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
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
        spdlog::warn("accept: {}", ec.message());
        continue;
      }
      if (w.sessions.size() >= options.max_connections_per_thread) continue;  // drops it
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(w.ioc, session(w, std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<bool> write(beast::tcp_stream& stream, Response response, unsigned version,
                              bool keep_alive) {
    http::response<http::string_body> out{static_cast<http::status>(response.status), version};
    out.set(http::field::content_type, "application/json");
    if (!response.allow.empty()) out.set(http::field::allow, response.allow);
    out.keep_alive(keep_alive);
    out.body() = std::move(response.body);
    out.prepare_payload();
    stream.expires_after(options.io_timeout);
    auto [ec, written] = co_await http::async_write(stream, out, use_tuple);
    co_return !ec;
  }

  asio::awaitable<void> session(Worker& w, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    const auto live = w.sessions.insert(w.sessions.end(), {&stream, true});
    beast::flat_buffer buffer;
    for (;;) {
      // A fresh parser per request: Beast parsers are not reusable across messages.
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      live->idle = true;
      if (w.stopping) break;
      stream.expires_after(options.header_timeout);
      auto [header_ec, header_bytes] =
          co_await http::async_read_header(stream, buffer, parser, use_tuple);
      live->idle = false;
      if (!header_ec && !parser.is_done()) {
        const auto& header = parser.get();
        if (beast::iequals(header[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, header.version()};
          stream.expires_after(options.io_timeout);
          co_await http::async_write(stream, go_on, use_tuple);
        }
        stream.expires_after(options.io_timeout);
        auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
        header_ec = body_ec;
      }
      if (header_ec) {
        if (!is_quiet_end(header_ec)) co_await write(stream, parse_failure(header_ec), 11, false);
        break;
      }

      auto& message = parser.get();
      const bool keep_alive = message.keep_alive() && !w.stopping;
      Response response;
      const std::string_view target = message.target();
      if (target.empty() || target.front() != '/') {
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
      const bool sent =
          co_await write(stream, std::move(response), message.version(), keep_alive && !w.stopping);
      if (!sent || !keep_alive || w.stopping) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    w.sessions.erase(live);
    if (w.stopping && w.sessions.empty()) w.drain_deadline.cancel();
  }

  void begin_shutdown(Worker& w) {
    w.stopping = true;
    beast::error_code ignored;
    w.acceptor.close(ignored);
    for (auto& live : w.sessions)
      if (live.idle) live.stream->socket().cancel(ignored);  // waiting for a request: end it now
    if (w.sessions.empty()) return;
    w.drain_deadline.expires_after(options.drain_timeout);
    w.drain_deadline.async_wait([&w](const beast::error_code& ec) {
      if (ec) return;  // every session finished in time
      spdlog::warn("shutdown: closing {} connections still busy", w.sessions.size());
      beast::error_code ignored_close;
      for (auto& live : w.sessions) live.stream->socket().close(ignored_close);
    });
  }
};

Server::Server(ServerOptions options, const Dispatcher& dispatcher)
    : impl_(std::make_unique<Impl>(std::move(options), dispatcher)) {}

Server::~Server() = default;

unsigned short Server::port() const {
  return impl_->bound_port;
}

void Server::run() {
  auto& workers = impl_->workers;
  for (auto& w : workers) asio::co_spawn(w->ioc, impl_->accept_loop(*w), asio::detached);

  asio::signal_set signals(workers.front()->ioc, SIGINT, SIGTERM);
  signals.async_wait([this](const beast::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: finishing requests in flight", signal);
    for (auto& w : impl_->workers)
      asio::post(w->ioc, [this, &w = *w] { impl_->begin_shutdown(w); });
  });
  spdlog::info("listening on http://{}:{} with {} threads", impl_->options.host, impl_->bound_port,
               workers.size());

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i)
    threads.emplace_back([&w = *workers[i]] { w.ioc.run(); });
  workers.front()->ioc.run();
  for (auto& t : threads) t.join();
  spdlog::info("stopped");
}

}  // namespace billing
