#pragma once
// A hospital's or individual's entity row is created on its first authenticated request; an
// assistant's row records its hospital. Entities are never deleted, so the ones known to exist
// are remembered and later requests need no database read. A step of the middleware chain, after
// the access-control steps: authentication only verifies, this is where storage is touched.
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "core/identity.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"

namespace billing {

class Enrollment {
 public:
  Enrollment(Db& db, const Clock& clock) : db_(db), clock_(clock) {}

  // The chain step: a call is ready when it has no caller or a known one.
  bool ready(const Call& call) const { return !call.identity || known(*call.identity); }
  boost::asio::awaitable<void> prepare(Call& call) { return enroll(*call.identity, clock_.now()); }

  // Whether the caller's entity is known to exist: then there is nothing to enroll. Checked
  // apart so that the request path makes no coroutine for it.
  bool known(const Identity& caller) const;
  // Creates the caller's entity row if the database has none; for callers not known().
  boost::asio::awaitable<void> enroll(Identity caller, TimePoint now);

 private:
  struct Hash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  using Ids = std::unordered_set<std::string, Hash, std::equal_to<>>;

  void remember(const Identity& caller);

  Db& db_;
  const Clock& clock_;
  mutable std::shared_mutex mutex_;  // held for a hash lookup or insert only
  Ids hospitals_;
  Ids individuals_;
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> assistants_;  // -> hospital
};

}  // namespace billing
