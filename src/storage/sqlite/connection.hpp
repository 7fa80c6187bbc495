#pragma once
#include <string>
#include <unordered_map>

#include "storage/sql.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace billing {

// One SQLite connection, used by one thread at a time, with its prepared statements.
class SqliteConnection final : public sql::Connection {
 public:
  enum class Mode { read_only, read_write };
  SqliteConnection(const std::string& path, Mode mode);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  sql::Dialect dialect() const override { return sql::Dialect::sqlite; }
  void exec(std::string_view script) override;
  std::int64_t run(const sql::Query& query, std::initializer_list<sql::Param> params,
                   sql::RowVisitor on_row) override;

 private:
  void configure(Mode mode);
  void close();
  sqlite3_stmt* prepared(const char* statement);
  [[noreturn]] void fail(const char* what) const;

  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

}  // namespace billing
