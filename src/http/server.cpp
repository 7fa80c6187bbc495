#include "http/server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <list>
#include <thread>
#include <utility>
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
#include <boost/container/small_vector.hpp>
#include <boost/url/parse.hpp>

#include "http/errors.hpp"
#include "kit/text.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using SteadyClock = std::chrono::steady_clock;
// How often a worker looks for connections past their deadline. Deadlines are checked by one
// timer per thread rather than armed per read and write: that saves two timerfd system calls
// on every request, for at most this much lateness in cutting a slow client off.
constexpr std::chrono::milliseconds kSweepInterval{100};
// After refusing a request, how long and how much of the rest of it is read away before closing.
constexpr std::chrono::milliseconds kLingerTime{1'000};
constexpr std::size_t kLingerBytes = 2 * 1024 * 1024;

// One thread's share of the server. Everything here is touched only from that thread, except
// `open_sessions`, which the accepting thread reads.
struct Worker {
  asio::io_context ioc{1};
  std::atomic<std::size_t> open_sessions{0};
  struct Live {
    tcp::socket* socket;
    SteadyClock::time_point deadline;  // the sweeper closes the socket after this
    bool idle;                         // between requests: may be closed at once on shutdown
    bool answering = false;  // its handler runs or its answer is written: the drain waits for it
  };
  std::list<Live> sessions;
  bool stopping = false;
  SteadyClock::time_point drain_until = SteadyClock::time_point::max();
  asio::steady_timer sweeper{ioc};
};

// HEAD is GET without the content (RFC 9110 9.3.2: a general-purpose server supports both):
// the GET route answers it, and write() leaves the body out.
Method method_of(http::verb verb) {
  switch (verb) {
    case http::verb::get:
    case http::verb::head:
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

// Whether `received` starts with a well-formed request line of an HTTP major version other than
// 1 ("GET / HTTP/2.0"), which Beast refuses as it refuses a malformed version, as soon as the
// version is in (its CRLF may not have come yet).
bool other_major_version(std::string_view received) {
  const auto line = received.substr(0, received.find("\r\n"));
  const auto first_space = line.find(' ');
  const auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || line.find(' ', first_space + 1) != last_space)
    return false;  // not method SP target SP version
  const auto version = line.substr(last_space + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return version.size() == 8 && version.starts_with("HTTP/") && digit(version[5]) &&
         version[6] == '.' && digit(version[7]) && version[5] != '1';
}

// `received`: the bytes read so far, from the start of the request.
Response parse_failure(const beast::error_code& ec, std::string_view received = {}) {
  if (ec == http::error::body_limit) return detail_response(413, "Request body too large");
  if (ec == http::error::header_limit) return detail_response(431, "Request headers too large");
  // RFC 9110 15.6.6.
  if (ec == http::error::bad_version && other_major_version(received))
    return detail_response(505, "HTTP version not supported");
  return detail_response(400, "Malformed HTTP request");
}

using RequestHeader = http::request_header<>;

// RFC 9112 6.1 and 6.3: a body is framed by Content-Length or by chunked as the final transfer
// coding, never both and never anything else; otherwise where the body ends (and the next
// request starts) is a guess, the shape of request smuggling. Beast already refuses differing
// Content-Lengths and a Transfer-Encoding after a chunked one. The answer closes the connection.
std::optional<Response> framing_problem(const RequestHeader& header) {
  const auto codings = header.equal_range(http::field::transfer_encoding);
  if (codings.first == codings.second) return std::nullopt;
  // HTTP/1.0 has no transfer codings: 9112 6.1 calls such a request faulty framing.
  if (header.find(http::field::content_length) != header.end() || header.version() < 11)
    return detail_response(400, "Malformed HTTP request");
  std::vector<std::string_view> names;
  for (auto field = codings.first; field != codings.second; ++field) {
    std::string_view list = field->value();
    while (!list.empty()) {
      const auto comma = std::min(list.find(','), list.size());
      auto coding = list.substr(0, comma);
      coding = coding.substr(0, std::min(coding.find(';'), coding.size()));
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
        coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
        coding.remove_suffix(1);
      if (!coding.empty()) names.push_back(coding);
      list.remove_prefix(std::min(comma + 1, list.size()));
    }
  }
  if (names.empty() || !beast::iequals(names.back(), "chunked"))
    return detail_response(400, "Malformed HTTP request");
  if (names.size() > 1) return detail_response(501, "Unsupported transfer coding");
  return std::nullopt;
}

struct Target {
  std::string_view path;
  std::string_view query;
};

// The path and query of an origin-form target ("/a?b"), or of an absolute-form one
// ("http://host/a?b", which RFC 9112 3.2.2 says a server MUST accept: its host is ignored, as the
// Host field names this server); nothing for the other forms ("*", "host:port"). After the
// authority both forms are read alike, so that they take the same bytes.
std::optional<Target> origin_of(std::string_view target) {
  const auto origin = [](std::string_view path_and_query) {
    const auto question = path_and_query.find('?');
    if (question == std::string_view::npos) return Target{path_and_query, {}};
    // An empty path is "/" (RFC 9112 3.2.1).
    return Target{question == 0 ? std::string_view("/") : path_and_query.substr(0, question),
                  path_and_query.substr(question + 1)};
  };
  if (target.starts_with('/')) return origin(target);
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const auto scheme = target.substr(0, scheme_end);
  if (!beast::iequals(scheme, "http") && !beast::iequals(scheme, "https")) return std::nullopt;
  const auto rest = target.substr(scheme_end + 3);
  const auto authority_end = std::min(rest.find_first_of("/?"), rest.size());
  const auto authority = boost::urls::parse_authority(rest.substr(0, authority_end));
  // RFC 9110 4.2.1 and 4.2.4: an http URI names a host, and no userinfo.
  if (!authority || authority->has_userinfo() || authority->encoded_host().empty())
    return std::nullopt;
  const auto path_and_query = rest.substr(authority_end);
  return path_and_query.empty() ? Target{"/", {}} : origin(path_and_query);
}

// One Host (RFC 9112 3.2: HTTP/1.1 needs it; two are 400 in any version).
bool valid_host(const RequestHeader& header) {
  const auto hosts = header.count(http::field::host);
  return hosts <= 1 && (header.version() < 11 || hosts == 1);
}

// The header's own fields, to tell them from a trailer's (drop_trailer): sorted, so that each
// field is looked up in log time (a trailer may hold a quarter of a million).
using HeaderFields = boost::container::small_vector<const void*, 16>;
HeaderFields header_fields(const RequestHeader& message) {
  HeaderFields fields;
  for (const auto& field : message) fields.push_back(&field);
  std::sort(fields.begin(), fields.end(), std::less<>());
  return fields;
}

// Drops the trailer fields a chunked body ended with, which Beast adds to the header's (beside a
// header field of the same name, not at the end): they are not header fields (RFC 9110 6.5.1),
// or a token or signature sent after the body would pass as one, unseen by any proxy that
// checked the header.
void drop_trailer(RequestHeader& message, const HeaderFields& header) {
  for (auto field = message.begin(); field != message.end();)
    if (!std::binary_search(header.begin(), header.end(), &*field, std::less<>()))
      field = message.erase(field);
    else
      ++field;
}

// Descriptors kept for what is not a client connection: database connections, Stripe's
// connections, log files, the listening sockets, a backup's files; and two per I/O thread (its
// epoll and eventfd).
constexpr rlim_t kReservedDescriptors = 128;
constexpr rlim_t kDescriptorsPerThread = 2;
// The connections a socket served beside the main one (/metrics's) takes at most, apart from the
// main socket's, so that a flood of connections there cannot keep monitoring out.
constexpr std::size_t kSideSocketConnections = 64;

// The connections a thread takes at most: the option's number, and no more than the process's
// open-file limit leaves, so that a flood of connections is turned away (accepted and closed at
// once) before accept() itself starts failing for lack of descriptors.
std::size_t connection_cap(const ServerOptions& options) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return options.max_connections_per_thread;
  const rlim_t reserved =
      kReservedDescriptors + kSideSocketConnections + kDescriptorsPerThread * options.threads;
  const rlim_t usable =
      limit.rlim_cur > 2 * reserved ? limit.rlim_cur - reserved : limit.rlim_cur / 2;
  const auto per_thread =
      std::max<std::size_t>(1, usable / std::max<std::size_t>(1, options.threads));
  return std::min(options.max_connections_per_thread, per_thread);
}

// A worker of its own per thread, the acceptor on the first one's io_context.
std::vector<std::unique_ptr<Worker>> make_workers(std::size_t threads) {
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    workers.push_back(std::make_unique<Worker>());
  return workers;
}

// A listening socket, what its connections are served with, and how many are open.
struct Listener {
  tcp::acceptor acceptor;
  const Router& router;
  const Pipeline& pipeline;
  std::string host;  // for the log
  unsigned short port;
  std::atomic<std::size_t> open_connections{0};

  Listener(asio::io_context& ioc, ListeningSocket& socket, const Router& r, const Pipeline& p,
           bool v6, int fd)
      : acceptor(ioc, v6 ? tcp::v6() : tcp::v4(), fd),
        router(r),
        pipeline(p),
        host(socket.host()),
        port(socket.port()) {}
};

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::size_t max_connections_per_thread;  // connection_cap(options)
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Listener>> listeners;  // the first: the main socket

  Impl(ServerOptions o, ListeningSocket socket, const Router& r, const Pipeline& p)
      : options(std::move(o)),
        max_connections_per_thread(connection_cap(options)),
        workers(make_workers(options.threads)) {
    listen(std::move(socket), r, p);
  }

  void listen(ListeningSocket socket, const Router& r, const Pipeline& p) {
    listeners.push_back(std::make_unique<Listener>(workers.front()->ioc, socket, r, p, socket.v6_,
                                                   std::exchange(socket.fd_, -1)));
  }

  // Whether `listener` takes no more connections now on `w`: the main socket (the first) up to
  // a share per thread of what the open-file limit leaves; a socket beside it up to
  // kSideSocketConnections in all, whatever the main one holds.
  bool full(const Listener& listener, const Worker& w) const {
    if (&listener == listeners.front().get())
      return w.open_sessions.load(std::memory_order_relaxed) >= max_connections_per_thread;
    return listener.open_connections.load(std::memory_order_relaxed) >= kSideSocketConnections;
  }

  // On the first thread: accepts each connection straight onto the next thread's io_context.
  asio::awaitable<void> accept_loop(Listener& listener) {
    auto& acceptor = listener.acceptor;
    for (std::size_t next = 0;; next = (next + 1) % workers.size()) {
      Worker& w = *workers[next];
      auto [ec, socket] = co_await acceptor.async_accept(w.ioc, use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of file descriptors, typically: pause rather than spin on the same error.
        spdlog::warn("accept: {}", ec.message());
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (full(listener, w)) continue;  // drops it
      socket.set_option(tcp::no_delay(true), ec);
      w.open_sessions.fetch_add(1, std::memory_order_relaxed);
      listener.open_connections.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(w.ioc, session(w, std::move(socket), listener), asio::detached);
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
  asio::awaitable<bool> write(Worker::Live& live, Response response, unsigned version,
                              bool keep_alive, bool head = false) {
    http::response<http::string_body> out{static_cast<http::status>(response.status), version};
    out.set(http::field::content_type, content_type_text(response.content_type));
    for (auto& header : response.headers) out.insert(header.name, std::move(header.value));
    out.keep_alive(keep_alive);
    out.body() = std::move(response.body);
    out.prepare_payload();
    if (head) out.body().clear();
    // The answer gets its full time, also after a drain's end: a drain bounds waiting for clients.
    live.deadline = SteadyClock::now() + options.io_timeout;
    auto [ec, written] = co_await http::async_write(*live.socket, out, use_tuple);
    co_return !ec;
  }

  // A response the server makes itself, then closes the connection: the request cannot be
  // trusted to have ended where the next one would begin.
  // The client may still be sending the request's body: reading it away for a moment before the
  // close lets the answer arrive, where closing with unread data would reset the connection.
  asio::awaitable<void> refuse(const Worker& w, Worker::Live& live, const Pipeline& pipeline,
                               Call& call, Response response) {
    pipeline.finish(call, response);
    if (!co_await write(live, std::move(response), 11, false)) co_return;
    beast::error_code ignored;
    live.socket->shutdown(tcp::socket::shutdown_send, ignored);
    arm(w, live, kLingerTime);
    std::array<char, 16 * 1024> sink;
    for (std::size_t drained = 0; drained < kLingerBytes;) {
      auto [ec, n] = co_await live.socket->async_read_some(asio::buffer(sink), use_tuple);
      if (ec) break;
      drained += n;
    }
  }

  asio::awaitable<void> session(Worker& w, tcp::socket socket, Listener& listener) {
    const Pipeline& pipeline = listener.pipeline;
    const auto live =
        w.sessions.insert(w.sessions.end(), {&socket, SteadyClock::time_point::max(), true});
    // Unlisted however the session ends, so the sweeper never sees a socket that is gone.
    struct Unlist {
      Worker& w;
      Listener& listener;
      std::list<Worker::Live>::iterator live;
      ~Unlist() {
        w.sessions.erase(live);
        w.open_sessions.fetch_sub(1, std::memory_order_relaxed);
        listener.open_connections.fetch_sub(1, std::memory_order_relaxed);
      }
    } unlist{w, listener, live};
    beast::error_code ec;
    const std::string client_address = socket.remote_endpoint(ec).address().to_string();
    // Bounded, so that a line Beast does not limit (a chunk extension, a trailer) cannot grow it
    // without end: past this it is a parse error. While a header is read, room for it and a
    // JSON body read with it; then the route's limit, so that only the routes that take 1 MiB
    // (the webhook's) let a client make the server hold that much.
    const std::size_t header_room = options.header_limit + kJsonBodyLimit;
    beast::flat_buffer buffer(header_room);
    for (;;) {
      buffer.max_size(std::max(header_room, buffer.size()));  // what a pipelining client sent
      // A fresh parser per request: Beast parsers are not reusable across messages. No body
      // limit while the header is read (Beast would refuse a large Content-Length before we have
      // the header's request id and route); the route's own applies once the route is known.
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(boost::none);
      live->idle = true;
      if (w.stopping) break;
      arm(w, *live, options.header_timeout);
      auto [header_ec, header_bytes] =
          co_await http::async_read_header(socket, buffer, parser, use_tuple);
      live->idle = false;
      Request request{.method = Method::other, .client_address = client_address};
      if (header_ec) {
        Call call{request};
        if (!is_quiet_end(header_ec))
          co_await refuse(w, *live, pipeline, call,
                          parse_failure(header_ec, {static_cast<const char*>(buffer.data().data()),
                                                    buffer.size()}));
        break;
      }

      auto& message = parser.get();
      const auto lookup = [&message](std::string_view name) {
        const auto field = message.find(name);
        return field == message.end() ? std::string_view{} : std::string_view(field->value());
      };
      const auto target = origin_of(message.target());
      request.method = method_of(message.method());
      if (target) {
        request.path = target->path;
        request.query = target->query;
      }
      request.header_lookup = lookup;
      Call call{request};
      if (!target || !valid_host(message)) {
        co_await refuse(w, *live, pipeline, call, detail_response(400, "Malformed HTTP request"));
        break;
      }
      if (auto problem = framing_problem(message)) {
        co_await refuse(w, *live, pipeline, call, std::move(*problem));
        break;
      }
      const auto match = listener.router.find(request);
      call.route = match.route;
      call.allow = match.allow;
      const auto body_limit = match.route ? match.route->policy.body_limit() : kJsonBodyLimit;
      if (parser.content_length().value_or(0) > body_limit) {
        co_await refuse(w, *live, pipeline, call, detail_response(413, "Request body too large"));
        break;
      }
      parser.body_limit(body_limit);  // a chunked body counts against it as it arrives
      buffer.max_size(std::max(options.header_limit + body_limit, buffer.size()));

      if (!parser.is_done()) {
        const auto header = parser.chunked() ? header_fields(message) : HeaderFields{};
        arm(w, *live, options.io_timeout);
        // An HTTP/1.0 client knows no 100 (RFC 9110 10.1.1: its expectation is ignored).
        if (message.version() >= 11 &&
            beast::iequals(message[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, message.version()};
          co_await http::async_write(socket, go_on, use_tuple);
        }
        auto [body_ec, body_bytes] = co_await http::async_read(socket, buffer, parser, use_tuple);
        if (body_ec) {
          if (!is_quiet_end(body_ec))
            co_await refuse(w, *live, pipeline, call, parse_failure(body_ec));
          break;
        }
        if (parser.chunked()) drop_trailer(message, header);
      }
      request.body = message.body();

      // No deadline while the handler works (Stripe calls may take two minutes): the client
      // waits for its answer, not slow itself. Nor does a shutdown's drain cut it short: the
      // process waits for the handler anyway, and its work would be done with the answer lost.
      live->answering = true;
      live->deadline = SteadyClock::time_point::max();
      auto response = co_await pipeline.handle(call);
      // Decided after the handler: a shutdown that began meanwhile closes the connection.
      const bool keep_alive = message.keep_alive() && !w.stopping;
      const bool sent = co_await write(*live, std::move(response), message.version(), keep_alive,
                                       message.method() == http::verb::head);
      live->answering = false;
      if (!sent || !keep_alive) break;
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Stops accepting (on the first thread), ends idle connections now and the others after their
  // response; one still sending its request is cut off at the drain's end, while a handler at
  // work is waited for and its answer written. The sweeper then ends, and with it the loop.
  void begin_shutdown(Worker& w) {
    w.stopping = true;
    w.drain_until = SteadyClock::now() + options.drain_timeout;
    beast::error_code ignored;
    if (&w == workers.front().get())
      for (auto& listener : listeners) listener->acceptor.close(ignored);
    for (auto& live : w.sessions) {
      if (live.idle)
        live.socket->cancel(ignored);
      else if (!live.answering)
        live.deadline = std::min(live.deadline, w.drain_until);
    }
  }
};

ListeningSocket::ListeningSocket(const std::string& host, unsigned short port) : host_(host) {
  asio::io_context context;
  tcp::acceptor acceptor(context);
  try {
    const tcp::endpoint endpoint(asio::ip::make_address(host), port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));  // past TIME_WAIT only
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor.local_endpoint().port();
    v6_ = endpoint.address().is_v6();
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{}: {}", host, port, error.code().message()));
  }
  fd_ = acceptor.release();
}

ListeningSocket::~ListeningSocket() {
  if (fd_ >= 0) ::close(fd_);
}

ListeningSocket::ListeningSocket(ListeningSocket&& other) noexcept
    : host_(std::move(other.host_)),
      fd_(std::exchange(other.fd_, -1)),
      v6_(other.v6_),
      port_(other.port_) {}

Server::Server(ServerOptions options, ListeningSocket socket, const Router& router,
               const Pipeline& pipeline)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(socket), router, pipeline)) {}

Server::~Server() = default;

unsigned short Server::port() const {
  return impl_->listeners.front()->port;
}

void Server::also_serve(ListeningSocket socket, const Router& router, const Pipeline& pipeline) {
  impl_->listen(std::move(socket), router, pipeline);
}

std::size_t Server::open_connections() const {
  std::size_t open = 0;
  for (const auto& w : impl_->workers) open += w->open_sessions.load(std::memory_order_relaxed);
  return open;
}

void Server::run(const std::function<void()>& on_ready, const std::function<void()>& on_stop) {
  auto& workers = impl_->workers;
  for (auto& listener : impl_->listeners)
    asio::co_spawn(workers.front()->ioc, impl_->accept_loop(*listener), asio::detached);
  for (auto& w : workers) asio::co_spawn(w->ioc, impl_->sweep(*w), asio::detached);

  asio::signal_set signals(workers.front()->ioc, SIGINT, SIGTERM);
  signals.async_wait([this, &on_stop](const beast::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: finishing requests in flight", signal);
    if (on_stop) on_stop();
    for (auto& w : impl_->workers)
      asio::post(w->ioc, [this, &w = *w] { impl_->begin_shutdown(w); });
  });
  for (const auto& listener : impl_->listeners)
    spdlog::info("listening on {} with {} threads", http_url(listener->host, listener->port),
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
