#pragma once
// Rate-limit buckets shared by every replica (Redis, see redis/), and the news they bring back.
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/entity.hpp"
#include "kit/rate_limit.hpp"

namespace billing {

class SharedRateCounters {
 public:
  virtual ~SharedRateCounters() = default;

  // One request against `owner`'s bucket; nothing when the store cannot be reached now (the
  // caller counts in this process meanwhile). Never blocks the calling thread.
  virtual boost::asio::awaitable<std::optional<RateDecision>> take(EntityKind kind,
                                                                   std::string owner, int limit,
                                                                   Micros period) = 0;
  // Whether the last contact worked; while not, take() answers nothing at once.
  virtual bool reachable() const = 0;
  // Tells the other replicas that `owner`'s plan changed; best effort.
  virtual void announce_plan_change(const EntityRef& owner) = 0;
};

// What the shared store reports; called from its own thread.
class SharedRateNews {
 public:
  virtual ~SharedRateNews() = default;
  virtual void plan_changed_elsewhere(const EntityRef& owner) = 0;
  // Announcements may have been lost (this or another replica lost the store for a while).
  virtual void plans_may_have_changed_elsewhere() = 0;
  // The store went away (false) or came back (true): announcements may have been missed.
  virtual void shared_counters_reachable(bool reachable) = 0;
};

}  // namespace billing
