#include "storage/redis/rate_counters.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

namespace billing {
namespace {

namespace asio = boost::asio;

// kit/rate_limit.cpp's take_token, step for step, on Redis' clock (every replica sees one time).
// Lua numbers are doubles: microseconds since 1970 fit their 53 bits exactly.
constexpr const char* kTakeScript = R"lua(
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = math.floor(period / limit)
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local next = tat + interval
local allowed_from = next - period
if now < allowed_from then
  return {0, 0, tat - now, allowed_from - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1)
return {1, math.floor((period - (next - now)) / interval), next - now, 0}
)lua";

constexpr const char* kPlansChannel = "billing:plan-changes";
constexpr std::string_view kKeyPrefix = "billing:ratelimit:";
constexpr timeval kTimeout{0, 500'000};
using namespace std::chrono_literals;
constexpr auto kRetryEvery = 1s;

struct ReplyFree {
  void operator()(void* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;
struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct RedisDown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An error Redis answered with: logged at most once a minute, for it may repeat on every request.
void say_error_reply(std::string_view error) {
  static std::atomic<std::int64_t> next_at{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto at = next_at.load(std::memory_order_relaxed);
  if (now < at ||
      !next_at.compare_exchange_strong(
          at, now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(1min).count()))
    return;
  spdlog::warn("rate limits: Redis answered \"{}\"; that request counted in this process", error);
}

Reply command(redisContext* c, const char* format, auto... args) {
  Reply reply(static_cast<redisReply*>(redisCommand(c, format, args...)));
  if (!reply) throw RedisDown(c->errstr);
  if (reply->type == REDIS_REPLY_ERROR) throw RedisDown(reply->str);
  return reply;
}

Context connect(const RedisAddress& a) {
  Context c(a.socket_path.empty() ? redisConnectWithTimeout(a.host.c_str(), a.port, kTimeout)
                                  : redisConnectUnixWithTimeout(a.socket_path.c_str(), kTimeout));
  if (!c) throw RedisDown("out of memory");
  if (c->err) throw RedisDown(c->errstr);
  redisSetTimeout(c.get(), kTimeout);
  if (!a.password.empty()) command(c.get(), "AUTH %s", a.password.c_str());
  return c;
}

std::optional<EntityRef> owner_of(std::string_view message) {
  const auto colon = message.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto kind = parse_enum<EntityKind>(message.substr(0, colon));
  if (!kind) return std::nullopt;
  return EntityRef{*kind, std::string(message.substr(colon + 1))};
}

bool whole_number(std::string_view digits, int& out) {
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc{} && end == digits.data() + digits.size() && out >= 0;
}

}  // namespace

RedisAddress parse_redis_url(std::string_view url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("not a URL");
  RedisAddress a;
  if (parsed->scheme() == "unix") {
    a.socket_path = parsed->path();
    if (a.socket_path.empty()) throw std::invalid_argument("unix:// needs a socket path");
    return a;
  }
  if (parsed->scheme() != "redis") throw std::invalid_argument("the scheme must be redis or unix");
  a.host = parsed->host();
  if (a.host.empty()) throw std::invalid_argument("no host");
  if (parsed->has_port() && (!whole_number(parsed->port(), a.port) || a.port < 1 || a.port > 65535))
    throw std::invalid_argument("the port must be 1 to 65535");
  if (parsed->has_password()) a.password = parsed->password();
  const std::string path = parsed->path();
  if (path.size() > 1 && !whole_number(std::string_view(path).substr(1), a.db))
    throw std::invalid_argument("the path must be a database number");
  return a;
}

// The thread's two connections: commands, and the announcements channel.
struct RedisRateCounters::Connection {
  Context commands;
  Context announcements;
  std::string take_script;  // its SHA1, loaded

  explicit Connection(const RedisAddress& a) : commands(connect(a)), announcements(connect(a)) {
    if (a.db != 0) command(commands.get(), "SELECT %d", a.db);
    take_script = command(commands.get(), "SCRIPT LOAD %s", kTakeScript)->str;
    command(announcements.get(), "SUBSCRIBE %s", kPlansChannel);
  }

  // Sends every request as one pipeline, then reads every answer in order.
  void send(std::vector<Request>& batch) {
    for (const Request& r : batch) {
      const int queued = r.limit == 0
                             ? redisAppendCommand(commands.get(), "PUBLISH %s %b", kPlansChannel,
                                                  r.key.data(), r.key.size())
                             : redisAppendCommand(commands.get(), "EVALSHA %s 1 %b %d %lld",
                                                  take_script.c_str(), r.key.data(), r.key.size(),
                                                  r.limit, static_cast<long long>(r.period));
      if (queued != REDIS_OK) throw RedisDown(commands->errstr);
    }
    bool script_missing = false;
    for (Request& r : batch) {
      void* raw = nullptr;
      if (redisGetReply(commands.get(), &raw) != REDIS_OK) throw RedisDown(commands->errstr);
      Reply reply(static_cast<redisReply*>(raw));
      if (r.limit == 0) continue;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        // Redis answered, but not with a decision (NOSCRIPT after SCRIPT FLUSH, OOM, a key
        // someone else wrote): this request counts locally, the connection stays.
        const std::string_view error = reply->type == REDIS_REPLY_ERROR
                                           ? std::string_view(reply->str, reply->len)
                                           : std::string_view("unexpected reply");
        script_missing = script_missing || error.starts_with("NOSCRIPT");
        say_error_reply(error);
        std::exchange(r.done, nullptr)(std::nullopt);
        continue;
      }
      const auto number = [&](std::size_t i) { return reply->element[i]->integer; };
      RateDecision d{.allowed = number(0) == 1,
                     .limit = r.limit,
                     .remaining = static_cast<int>(number(1)),
                     .full_after = number(2),
                     .retry_after = number(3)};
      std::exchange(r.done, nullptr)(d);
    }
    if (script_missing) take_script = command(commands.get(), "SCRIPT LOAD %s", kTakeScript)->str;
  }

  // Tells the other replicas to read every limit again: they may have missed announcements
  // while this one could not send them.
  void announce_all_changed() { command(commands.get(), "PUBLISH %s %s", kPlansChannel, "*"); }

  // Reads what the channel has; calls `changed` for each owner announced, `all_changed` for "*".
  template <class F, class G>
  void receive(F&& changed, G&& all_changed) {
    if (redisBufferRead(announcements.get()) != REDIS_OK) throw RedisDown("channel closed");
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(announcements.get(), &raw) != REDIS_OK)
        throw RedisDown(announcements->errstr);
      if (!raw) return;
      Reply reply(static_cast<redisReply*>(raw));
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
          reply->element[2]->type != REDIS_REPLY_STRING)
        continue;
      const std::string_view text{reply->element[2]->str, reply->element[2]->len};
      if (text == "*")
        all_changed();
      else if (auto owner = owner_of(text))
        changed(*owner);
    }
  }
};

RedisRateCounters::RedisRateCounters(RedisAddress address)
    : address_(std::move(address)), wake_fd_(eventfd(0, EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

RedisRateCounters::~RedisRateCounters() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
}

void RedisRateCounters::start(SharedRateNews& news) {
  news_ = &news;
  // The first attempt before serving, so that the first requests count in Redis already.
  std::unique_ptr<Connection> connection;
  try {
    connection = std::make_unique<Connection>(address_);
    reachable_ = true;
    spdlog::info("rate limits: counting in Redis at {}", where());
  } catch (const std::exception& error) {
    say_unreachable(error);
  }
  news.shared_counters_reachable(reachable_);
  thread_ = std::thread([this, first = std::move(connection)]() mutable { run(std::move(first)); });
}

void RedisRateCounters::say_unreachable(const std::exception& error) const {
  spdlog::warn("rate limits: Redis at {} unreachable ({}), counting in this process meanwhile",
               where(), error.what());
}

std::string_view RedisRateCounters::where() const {
  return address_.socket_path.empty() ? address_.host : address_.socket_path;
}

void RedisRateCounters::enqueue(Request request) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
    if (queue_.size() > 1) return;  // the thread is woken already
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = write(wake_fd_, &one, sizeof one);
}

boost::asio::awaitable<std::optional<RateDecision>> RedisRateCounters::take(EntityKind kind,
                                                                            std::string owner,
                                                                            int limit,
                                                                            Micros period) {
  if (!reachable()) co_return std::nullopt;
  std::string key;
  // The limit is part of the key: a new plan's limit starts with a full bucket, as locally.
  key.reserve(kKeyPrefix.size() + 24 + owner.size());
  key.append(kKeyPrefix).append(name_of(kind)).append(":").append(owner).append(":");
  key.append(std::to_string(limit));
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                          void(std::optional<RateDecision>)>(
      [&](auto handler) {
        auto caller = asio::make_work_guard(asio::get_associated_executor(handler));
        // std::function needs a copyable callable; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        enqueue({std::move(key), limit, period,
                 [shared, caller](std::optional<RateDecision> decision) mutable {
                   asio::post(caller.get_executor(),
                              [shared, decision] { std::move (*shared)(decision); });
                   caller.reset();
                 }});
      },
      asio::use_awaitable);
}

void RedisRateCounters::announce_plan_change(const EntityRef& owner) {
  if (!reachable()) return;
  enqueue({std::string(name_of(owner.kind)) + ":" + owner.id, 0, 0, {}});
}

void RedisRateCounters::run(std::unique_ptr<Connection> connection) {
  bool said_down = !connection;
  auto next_attempt = std::chrono::steady_clock::now() + (connection ? 0s : kRetryEvery);
  std::vector<Request> batch;
  const auto fail_all = [](std::vector<Request>& requests) {
    for (Request& r : requests)
      if (r.done) std::exchange(r.done, nullptr)(std::nullopt);
    requests.clear();
  };
  const auto lost = [&](const std::exception& error) {
    connection.reset();
    reachable_ = false;
    next_attempt = std::chrono::steady_clock::now() + kRetryEvery;
    if (said_down) return;
    said_down = true;
    say_unreachable(error);
    news_->shared_counters_reachable(false);
  };
  for (;;) {
    if (!connection && std::chrono::steady_clock::now() >= next_attempt) {
      try {
        connection = std::make_unique<Connection>(address_);
        connection->announce_all_changed();
        reachable_ = true;
        said_down = false;
        spdlog::info("rate limits: Redis at {} answers again, counting there", where());
        news_->shared_counters_reachable(true);
      } catch (const std::exception& error) {
        lost(error);
      }
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0},
                     {connection ? connection->announcements->fd : -1, POLLIN, 0}};
    const auto wait = connection ? std::chrono::milliseconds(1000)
                                 : std::chrono::duration_cast<std::chrono::milliseconds>(
                                       next_attempt - std::chrono::steady_clock::now());
    poll(fds, 2, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
    if (fds[0].revents & POLLIN) {
      std::uint64_t count;
      [[maybe_unused]] auto got = read(wake_fd_, &count, sizeof count);
    }
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      batch.swap(queue_);
    }
    try {
      if (!batch.empty() && connection) connection->send(batch);
      if (connection && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        connection->receive([&](const EntityRef& owner) { news_->plan_changed_elsewhere(owner); },
                            [&] { news_->plans_may_have_changed_elsewhere(); });
    } catch (const std::exception& error) {
      lost(error);
    }
    fail_all(batch);
  }
  fail_all(batch);
  std::lock_guard lock(mutex_);
  fail_all(queue_);
}

}  // namespace billing
