#pragma once
// The database as the domains see it: units of work, awaited, never stalling the I/O thread.
// `read` may run on the caller's thread (a SQLite WAL read) or elsewhere; `transact` runs `fn`
// inside BEGIN/COMMIT and rolls back if it throws. Inside a unit, `Tx::get<R>()` reaches any
// repository a domain declares (entities/repo.hpp, plans/repo.hpp, ...), all in the same
// transaction; storage/ implements every one of them for both backends.
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <typeinfo>

#include <boost/asio/awaitable.hpp>

namespace billing {

class Tx {
 public:
  virtual ~Tx() = default;

  // The repository R of this unit. Storage's one transaction class implements every domain's
  // repository, and its test suite reaches each through here, so a miss is a programming error.
  // The cross-cast is found once per class of unit and thread, then reused: a dynamic_cast to a
  // sibling base costs a few hundred nanoseconds, a measurable share of a cached read.
  template <class R>
  R& get() {
    thread_local const std::type_info* cached_class = nullptr;
    thread_local std::ptrdiff_t cached_offset = 0;
    const std::type_info& unit_class = typeid(*this);
    if (cached_class != &unit_class) {
      auto* repo = dynamic_cast<R*>(this);
      if (!repo)
        throw std::logic_error("storage/ does not implement a repository a domain asked for");
      cached_offset = reinterpret_cast<char*>(repo) - reinterpret_cast<char*>(this);
      cached_class = &unit_class;
    }
    return *reinterpret_cast<R*>(reinterpret_cast<char*>(this) + cached_offset);
  }
};

class Db {
 public:
  virtual ~Db() = default;

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> read(F fn) {
    return run<F>(Unit::read, std::move(fn));
  }
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transact(F fn) {
    return run<F>(Unit::write, std::move(fn));
  }
  // A write unit that shares one commit with every grouped unit waiting at that moment (group
  // commit: many small durable writes for the price of one fsync). Each runs in a savepoint of
  // its own, so a unit that throws undoes only its own changes and only its caller sees the
  // exception. Returns once the shared commit is durable; if that commit fails, every unit of
  // the group throws. Batches form by themselves under load and hold one unit when idle.
  // Units of equal `affinity` (say, a hash of the entity they change) always share a writer; a
  // backend may run several writers (PostgreSQL does), so units that touch the same rows should
  // share an affinity, or their writers may wait on each other's row locks.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transact_grouped(F fn,
                                                                         std::size_t affinity) {
    return run<F>(Unit::grouped_write, std::move(fn), affinity);
  }

  // Applies pending numbered migrations. Blocking: for start-up and `billing migrate` only.
  virtual void migrate() = 0;

 protected:
  enum class Unit { read, write, grouped_write };
  using Work = std::function<void(Tx&)>;
  // `affinity` matters to grouped writes only.
  virtual boost::asio::awaitable<void> execute(Unit unit, Work work, std::size_t affinity) = 0;

 private:
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> run(Unit unit, F fn,
                                                            std::size_t affinity = 0) {
    using Result = std::invoke_result_t<F&, Tx&>;
    if constexpr (std::is_void_v<Result>) {
      co_await execute(
          unit, [&fn](Tx& tx) { fn(tx); }, affinity);
    } else {
      std::optional<Result> result;
      co_await execute(
          unit, [&fn, &result](Tx& tx) { result.emplace(fn(tx)); }, affinity);
      co_return std::move(*result);
    }
  }
};

}  // namespace billing
