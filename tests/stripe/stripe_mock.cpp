#include "tests/stripe/stripe_mock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace billing::stripe_test {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kStartAttempts = 3;

bool exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

std::optional<std::string> stripe_mock_binary() {
  if (const char* path = std::getenv("BILLING_STRIPE_MOCK"); path && *path) return path;
  const std::string built = BILLING_SOURCE_DIR "/build-stripe-mock/stripe-mock";
  if (::access(built.c_str(), X_OK) == 0) return built;
  return std::nullopt;
}

bool stripe_mock_required() {
  const char* required = std::getenv("BILLING_REQUIRE_STRIPE_MOCK");
  return required && std::string_view(required) == "1";
}

StripeMock::StripeMock(const std::string& binary) {
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt)
    if (start(binary)) return;
  throw std::runtime_error("stripe-mock did not start " + std::to_string(kStartAttempts) +
                           " times; its last log:\n" + log());
}

StripeMock::~StripeMock() {
  stop();
}

std::string StripeMock::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::string StripeMock::log() const {
  std::ifstream in(dir_.path() + "/stripe-mock.log", std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool StripeMock::start(const std::string& binary) {
  const std::string log_path = dir_.path() + "/stripe-mock.log";
  std::filesystem::remove(log_path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // An empty port: the system picks a free one, which stripe-mock prints once it listens.
  std::vector<std::string> argv{binary, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:"};
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + binary);

  static const std::regex kListening(R"(Listening for HTTP at address: 127\.0\.0\.1:(\d+))");
  const auto deadline = Steady::now() + 20s;
  while (Steady::now() < deadline) {
    std::smatch match;
    const auto text = log();
    if (std::regex_search(text, match, kListening)) {
      port_ = static_cast<unsigned short>(std::stoi(match[1]));
      return true;
    }
    if (exited(pid_)) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  stop();
  return false;
}

void StripeMock::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = Steady::now() + 5s;
  while (!exited(pid_)) {
    if (Steady::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  pid_ = -1;
}

std::unique_ptr<StripeMock> started_or_skipped() {
  const auto binary = stripe_mock_binary();
  if (binary) return std::make_unique<StripeMock>(*binary);
  if (stripe_mock_required())
    ADD_FAILURE() << "BILLING_REQUIRE_STRIPE_MOCK=1 but " << kNoStripeMock;
  else
    [] { GTEST_SKIP() << kNoStripeMock; }();  // a skip recorded for the test that called
  return nullptr;
}

}  // namespace billing::stripe_test
