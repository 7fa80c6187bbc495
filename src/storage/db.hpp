#pragma once
// The database as the request path sees it: units of work on a Repo, awaited, never stalling
// the I/O thread. `read` may run on the caller's thread (a SQLite WAL read) or elsewhere;
// `transact` runs `fn` inside BEGIN/COMMIT and rolls back if it throws.
#include <functional>
#include <optional>
#include <type_traits>

#include <boost/asio/awaitable.hpp>

#include "storage/repo.hpp"

namespace billing {

class Db {
 public:
  virtual ~Db() = default;

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Repo&>> read(F fn) {
    return run<F>(Unit::read, std::move(fn));
  }
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Repo&>> transact(F fn) {
    return run<F>(Unit::write, std::move(fn));
  }

  // Applies pending numbered migrations. Blocking: for start-up and `billing migrate` only.
  virtual void migrate() = 0;

 protected:
  enum class Unit { read, write };
  using Work = std::function<void(Repo&)>;
  virtual boost::asio::awaitable<void> execute(Unit unit, Work work) = 0;

 private:
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Repo&>> run(Unit unit, F fn) {
    using Result = std::invoke_result_t<F&, Repo&>;
    if constexpr (std::is_void_v<Result>) {
      co_await execute(unit, [&fn](Repo& repo) { fn(repo); });
    } else {
      std::optional<Result> result;
      co_await execute(unit, [&fn, &result](Repo& repo) { result.emplace(fn(repo)); });
      co_return std::move(*result);
    }
  }
};

}  // namespace billing
