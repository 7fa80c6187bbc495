#pragma once
#include <string>
#include <unordered_map>

#include "storage/sql.hpp"

struct pg_conn;

namespace billing {

// One libpq connection, used by one thread at a time, with its prepared statements (each prepared
// on first use, its `?` placeholders numbered $1..$n then).
class PostgresConnection final : public sql::Connection {
 public:
  explicit PostgresConnection(const std::string& url);
  ~PostgresConnection() override;
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  sql::Dialect dialect() const override { return sql::Dialect::postgres; }
  void exec(std::string_view script) override;
  std::int64_t run(const sql::Query& query, std::initializer_list<sql::Param> params,
                   sql::RowVisitor on_row) override;

  bool broken() const;
  void reconnect();  // after the server went away; prepared statements are made again

 private:
  const std::string& statement_name(const char* statement);

  pg_conn* conn_ = nullptr;
  std::unordered_map<const char*, std::string> prepared_;
};

}  // namespace billing
