#pragma once
// A Redis server of the test's own (Debian's redis-server), on a Unix socket in a temporary
// directory, no persistence: to share rate limits between servers, and to stop and start.
#include <string>

#include "tests/e2e/client.hpp"

namespace billing::e2e {

class PrivateRedis {
 public:
  PrivateRedis();  // started; throws with the log if it does not answer
  ~PrivateRedis();
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  std::string url() const { return "unix://" + socket_; }
  void start();
  void stop();
  // redis-cli's output for `args` (e.g. {"KEYS", "billing:*"}).
  std::string cli(const std::vector<std::string>& args) const;

 private:
  void kill_daemon() const;  // SIGKILL to the pid in its pid file, if there is one

  TempDir dir_;
  std::string socket_;
  bool running_ = false;
};

}  // namespace billing::e2e
