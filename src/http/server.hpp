#pragma once
// The HTTP/1.1 server: one io_context per thread, each with its own acceptor on the port
// (SO_REUSEPORT); a connection lives on the thread that accepted it.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "http/dispatch.hpp"

namespace billing {

struct ServerOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 8000;  // 0: any free port (see Server::port)
  std::size_t threads = 2;
  std::chrono::milliseconds header_timeout{10'000};  // a client slower than this is cut off
  std::chrono::milliseconds io_timeout{30'000};
  std::chrono::milliseconds drain_timeout{10'000};  // how long SIGTERM waits for requests
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::size_t max_connections_per_thread = 10'000;
};

class Server {
 public:
  Server(ServerOptions options, const Dispatcher& dispatcher);  // binds the port
  ~Server();
  unsigned short port() const;
  // Serves until SIGTERM or SIGINT, then finishes the requests in flight and returns.
  // `on_ready` runs once those signals are handled, before the first connection is served.
  void run(const std::function<void()>& on_ready = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace billing
