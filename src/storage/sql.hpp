#pragma once
// The small driver interface that both SQL backends implement, so that one implementation of
// each domain's repository (storage/*_store.hpp) serves both. Each query is written once, with
// `?` placeholders; where the dialects truly differ a Query carries both texts.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string_view>
#include <variant>

#include "kit/function_ref.hpp"

namespace billing::sql {

enum class Dialect { sqlite, postgres };

// The text of one statement in each dialect. Texts are string literals: connections prepare a
// statement once and cache it by the address of its text, so choosing one is a pointer choice.
class Query {
 public:
  constexpr Query(const char* text) : texts_{text, text} {}  // NOLINT: implicit, most read alike
  constexpr Query(const char* sqlite, const char* postgres) : texts_{sqlite, postgres} {}

  constexpr const char* text(Dialect dialect) const {
    return texts_[static_cast<std::size_t>(dialect)];
  }

 private:
  const char* texts_[2];
};

using Param = std::variant<std::nullptr_t, std::string_view, std::int64_t>;

class Row {
 public:
  virtual bool is_null(int column) const = 0;
  virtual std::string_view text(int column) const = 0;
  virtual std::int64_t integer(int column) const = 0;

 protected:
  ~Row() = default;
};

using RowVisitor = FunctionRef<void(const Row&)>;

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  virtual void exec(std::string_view script) = 0;  // several statements, no parameters
  // Runs the query's text for this dialect as a prepared statement, calling on_row for each row;
  // returns the rows seen or changed.
  virtual std::int64_t run(const Query& query, std::initializer_list<Param> params,
                           RowVisitor on_row = {}) = 0;
  // For a statement whose rows and count nobody reads: a backend may queue it and send it with
  // the next round trip (PostgreSQL's pipeline mode). It has run once the next run(), exec() or
  // settle() returns; those throw its error if it failed, with the queue emptied either way.
  virtual void run_later(const Query& query, std::initializer_list<Param> params) {
    run(query, params);
  }
  // A read whose rows are wanted a little later: a backend may queue it as run_later does, and
  // call `on_row` for each of its rows once the next run(), exec() or settle() has returned.
  virtual void read_later(const Query& query, std::initializer_list<Param> params,
                          std::function<void(const Row&)> on_row) {
    run(query, params, on_row);
  }
  virtual void settle() {}
  // Left in a state no statement can follow (the server went away): nothing more is tried on it.
  virtual bool broken() const { return false; }
};

// Before rolling back a unit that failed: its queued statements have run or failed, whichever,
// and the connection takes statements again.
inline void settle_failed_unit(Connection& connection) {
  try {
    connection.settle();
  } catch (...) {
    // The unit is rolled back; its first error says more.
  }
}

}  // namespace billing::sql
