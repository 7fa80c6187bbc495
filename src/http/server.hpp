#pragma once
// The HTTP/1.1 server: one io_context per thread, one listening socket (so a second process
// cannot bind the port and take a share of the connections, as SO_REUSEPORT would let it), and
// optionally more with routes of their own; the first thread accepts and hands connections
// round-robin to the threads, and a connection lives on the thread it was handed to.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "http/chain.hpp"
#include "http/route.hpp"

namespace billing {

struct ServerOptions {
  std::size_t threads = 2;
  std::chrono::milliseconds header_timeout{10'000};  // a client slower than this is cut off
  std::chrono::milliseconds io_timeout{30'000};
  std::chrono::milliseconds drain_timeout{10'000};  // how long SIGTERM waits for requests
  std::size_t header_limit = 16 * 1024;             // beyond it: 431
  std::size_t max_connections_per_thread = 10'000;  // and no more than RLIMIT_NOFILE leaves
};

// A bound, listening TCP socket. `billing serve` opens it before anything else, so that a port in
// use stops the start at once, before the database is touched.
class ListeningSocket {
 public:
  // Throws std::runtime_error naming the address if it cannot bind (in use, say).
  ListeningSocket(const std::string& host, unsigned short port);  // port 0: any free one
  ~ListeningSocket();
  ListeningSocket(ListeningSocket&& other) noexcept;
  ListeningSocket& operator=(ListeningSocket&&) = delete;
  const std::string& host() const { return host_; }
  unsigned short port() const { return port_; }

 private:
  friend class Server;
  std::string host_;
  int fd_ = -1;  // -1 once a Server has taken it
  bool v6_ = false;
  unsigned short port_ = 0;
};

class Server {
 public:
  Server(ServerOptions options, ListeningSocket socket, const Router& router,
         const Pipeline& pipeline);
  ~Server();
  unsigned short port() const;  // the main socket's
  // Serves `socket` too, with routes and a chain of its own, on the same threads (/metrics on a
  // port of its own, say). Before run().
  void also_serve(ListeningSocket socket, const Router& router, const Pipeline& pipeline);
  // Connections open now, on every socket.
  std::size_t open_connections() const;
  // Serves until SIGTERM or SIGINT, then finishes the requests in flight and returns.
  // `on_ready` runs once those signals are handled, before the first connection is served;
  // `on_stop` when one arrives (to cancel background work that would keep run() from returning).
  void run(const std::function<void()>& on_ready = {}, const std::function<void()>& on_stop = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace billing
