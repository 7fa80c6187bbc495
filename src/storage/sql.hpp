#pragma once
// The small driver interface that both SQL backends implement, so that one Repo (SqlRepo)
// serves both. Statements are string literals, prepared once per connection and cached by
// address; each backend ships its own dialect of them (Statements).
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

#include "kit/function_ref.hpp"

namespace billing::sql {

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
  virtual void exec(std::string_view script) = 0;  // several statements, no parameters
  // Runs a prepared statement, calling on_row for each row; returns the rows seen or changed.
  virtual std::int64_t run(const char* statement, std::initializer_list<Param> params,
                           RowVisitor on_row = {}) = 0;
};

// Entity statements come in pairs indexed by EntityKind (hospital, individual).
struct Statements {
  const char* begin_write;
  const char* ping;
  const char* entity_exists[2];
  const char* lock_entity[2];  // entity_exists that also locks the row until commit
  const char* create_entity[2];
  const char* create_assistant;
  const char* assistant_hospital;
  const char* find_plan[2];
  const char* save_plan;
  const char* append_history;
  const char* history[2];
  const char* begin_migration;  // a write transaction that also keeps other replicas out
  const char* create_migrations_table;
  const char* applied_migrations;
  const char* record_migration;
};

}  // namespace billing::sql
