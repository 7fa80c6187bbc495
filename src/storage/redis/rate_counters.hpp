#pragma once
// The replicas' shared rate-limit buckets in Redis, through hiredis on a thread of its own: the
// I/O threads queue their requests and await the answer, and the thread sends whatever has
// queued as one pipeline (one round trip for many requests under load). Each request is one
// atomic Lua script running the GCRA steps of kit/rate_limit.hpp on Redis' clock. Plan changes
// are announced on a channel the thread also listens to. When Redis cannot be reached the
// thread says so once (SharedRateNews), answers nothing until it is back (the limiter counts
// locally meanwhile), and tries again every second.
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "limits/shared_counters.hpp"

namespace billing {

// Where Redis is: redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock.
struct RedisAddress {
  std::string host;  // empty for a socket path
  int port = 6379;
  std::string socket_path;
  std::string password;
  int db = 0;
};
// Throws std::invalid_argument naming what is wrong.
RedisAddress parse_redis_url(std::string_view url);

class RedisRateCounters final : public SharedRateCounters {
 public:
  explicit RedisRateCounters(RedisAddress address);
  ~RedisRateCounters() override;
  RedisRateCounters(const RedisRateCounters&) = delete;
  RedisRateCounters& operator=(const RedisRateCounters&) = delete;

  // Connects (or keeps trying) on the thread, which reports to `news`.
  void start(SharedRateNews& news);

  boost::asio::awaitable<std::optional<RateDecision>> take(EntityKind kind, std::string owner,
                                                           int limit, Micros period) override;
  bool reachable() const override { return reachable_.load(std::memory_order_relaxed); }
  void announce_plan_change(const EntityRef& owner) override;

 private:
  struct Request {
    std::string key;  // a bucket's key, or for an announcement the message
    int limit = 0;    // 0: an announcement
    Micros period = 0;
    std::function<void(std::optional<RateDecision>)> done;
  };
  struct Connection;

  void enqueue(Request request);
  void run(std::unique_ptr<Connection> connection);  // the thread
  std::string_view where() const;
  void say_unreachable(const std::exception& error) const;  // once per outage

  const RedisAddress address_;
  SharedRateNews* news_ = nullptr;
  std::atomic<bool> reachable_{false};
  const int wake_fd_;  // an eventfd: requests queued, or stop
  std::mutex mutex_;   // guards queue_ and stopping_
  std::vector<Request> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace billing
