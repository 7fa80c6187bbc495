#pragma once
// An in-process HTTP server for tests of the HTTP layer: a forked child builds a Router, a Chain
// and a Server from the test's code and serves on a free port until SIGTERM; the parent talks to
// it over loopback with the end-to-end Connection and HttpClient. The child is a copy of the test
// process made before it starts any thread, so Server::run may own the signals there, and a
// crash in it cannot take the test runner down.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "tests/e2e/client.hpp"

namespace billing::http_test {

using e2e::Milliseconds;

class ForkedServer {
 public:
  struct Child {
    std::string dir;    // the server's own temporary directory
    int access_log_fd;  // a file in `dir`, for an AccessLog to write to (see access_log())
    // Call once the server is bound and signals are handled, e.g. in Server::run's on_ready.
    std::function<void(unsigned short port)> listening;
  };
  // Runs in the child: builds the server and runs it until SIGTERM. An exception or a return
  // before `listening` is a failed start (the parent's constructor throws with the child's log).
  using Serve = std::function<void(Child& child)>;

  explicit ForkedServer(const Serve& serve);
  ~ForkedServer();  // SIGTERM, then SIGKILL if the child has not exited within 5 s
  ForkedServer(const ForkedServer&) = delete;
  ForkedServer& operator=(const ForkedServer&) = delete;

  unsigned short port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  std::string log() const;         // the child's stdout and stderr
  std::string access_log() const;  // what was written to Child::access_log_fd
  // SIGTERM and wait: the exit code (128 + signal if killed by one), nothing after `timeout`.
  std::optional<int> stop(Milliseconds timeout = std::chrono::seconds(5));

 private:
  e2e::TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  unsigned short port_ = 0;
};

}  // namespace billing::http_test
