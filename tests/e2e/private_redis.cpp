#include "tests/e2e/private_redis.hpp"

#include <signal.h>
#include <sys/types.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace billing::e2e {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

PrivateRedis::PrivateRedis() : socket_(dir_.path() + "/redis.sock") {
  start();
}

PrivateRedis::~PrivateRedis() {
  if (!running_) return;
  try {
    stop();
  } catch (const std::exception&) {
    kill_daemon();
  }
}

void PrivateRedis::kill_daemon() const {
  pid_t pid = 0;
  if (std::ifstream(dir_.path() + "/redis.pid") >> pid && pid > 0) ::kill(pid, SIGKILL);
}

void PrivateRedis::start() {
  const std::string log = dir_.path() + "/redis.log";
  const int rc =
      run_command({"/usr/bin/redis-server", "--daemonize", "yes", "--port", "0", "--unixsocket",
                   socket_, "--unixsocketperm", "700", "--dir", dir_.path(), "--save", "",
                   "--appendonly", "no", "--pidfile", dir_.path() + "/redis.pid", "--logfile", log},
                  dir_.path() + "/start.log");
  if (rc != 0 || !eventually([&] { return cli({"PING"}) == "PONG\n"; }, 10s)) {
    kill_daemon();  // daemonized but not answering: not left behind
    throw std::runtime_error("redis-server did not start:\n" + read_all(log));
  }
  running_ = true;
}

void PrivateRedis::stop() {
  cli({"SHUTDOWN", "NOSAVE"});
  running_ = false;
  if (!eventually([&] { return cli({"PING"}) != "PONG\n"; }, 10s))
    throw std::runtime_error("redis-server did not stop");
}

std::string PrivateRedis::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"/usr/bin/redis-cli", "-s", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir_.path() + "/cli.out";
  std::remove(out.c_str());  // run_command appends
  run_command(argv, out, 10s);
  return read_all(out);
}

}  // namespace billing::e2e
