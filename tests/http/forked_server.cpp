#include "tests/http/forked_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace billing::http_test {
namespace {

using Steady = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string log_path(const std::string& dir) {
  return dir + "/server.log";
}
std::string access_log_path(const std::string& dir) {
  return dir + "/access.log";
}

int open_for_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  return fd;
}

// The child's side: never returns, never runs the test runner's code after `serve`.
[[noreturn]] void run_child(const ForkedServer::Serve& serve, const std::string& dir,
                            int ready_fd) {
  int code = 0;
  try {
    const int log_fd = open_for_append(log_path(dir));
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ForkedServer::Child child{dir, open_for_append(access_log_path(dir)),
                              [ready_fd](unsigned short port) {
                                if (::write(ready_fd, &port, sizeof port) != sizeof port)
                                  std::fprintf(stderr, "forked server: cannot report the port\n");
                                ::close(ready_fd);
                              }};
    serve(child);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "forked server: %s\n", error.what());
    code = 3;
  } catch (...) {
    std::fprintf(stderr, "forked server: unknown exception\n");
    code = 3;
  }
  std::fflush(nullptr);
  ::_exit(code);  // no atexit handlers, no static destructors of the test runner
}

// The exit code of `pid`, or nothing if it still runs after `timeout`.
std::optional<int> wait_child(pid_t pid, Milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0) return -1;
    if (Steady::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

ForkedServer::ForkedServer(const Serve& serve) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  pid_ = ::fork();
  if (pid_ < 0) {
    const int error = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    throw std::system_error(error, std::generic_category(), "fork");
  }
  if (pid_ == 0) {
    ::close(ready[0]);
    run_child(serve, dir_.path(), ready[1]);
  }
  ::close(ready[1]);
  pollfd wait{ready[0], POLLIN, 0};
  int polled = 0;
  do {
    polled = ::poll(&wait, 1, 10'000);
  } while (polled < 0 && errno == EINTR);
  unsigned short port = 0;
  const bool reported = polled == 1 && ::read(ready[0], &port, sizeof port) == sizeof port;
  ::close(ready[0]);
  if (!reported || port == 0) {
    ::kill(pid_, SIGKILL);
    exit_code_ = wait_child(pid_, std::chrono::seconds(5));
    throw std::runtime_error("the forked server did not start:\n" + log());
  }
  port_ = port;
}

ForkedServer::~ForkedServer() {
  if (pid_ <= 0 || exit_code_) return;
  if (!stop()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string ForkedServer::log() const {
  return read_file(log_path(dir_.path()));
}

std::string ForkedServer::access_log() const {
  return read_file(access_log_path(dir_.path()));
}

std::optional<int> ForkedServer::stop(Milliseconds timeout) {
  if (!exit_code_) {
    ::kill(pid_, SIGTERM);
    exit_code_ = wait_child(pid_, timeout);
  }
  return exit_code_;
}

}  // namespace billing::http_test
