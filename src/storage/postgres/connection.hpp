#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/sql.hpp"

struct pg_conn;

namespace billing {

// One libpq connection, used by one thread at a time, with its prepared statements (each prepared
// on first use, its `?` placeholders numbered $1..$n then). Statements run later go out in
// pipeline mode with the next statement whose answer is needed: one round trip for all of them.
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
  void run_later(const sql::Query& query, std::initializer_list<sql::Param> params) override;
  void read_later(const sql::Query& query, std::initializer_list<sql::Param> params,
                  std::function<void(const sql::Row&)> on_row) override;
  void settle() override;

  bool broken() const override;  // the server went away, or a pipeline could not be ended
  void reconnect();              // after the server went away; prepared statements are made again

 private:
  void keep_commits_durable();  // synchronous_commit on, unless stronger
  const std::string& statement_name(const char* statement);
  // In pipeline mode: sends the statement (and its preparation, on first use).
  void send(const char* statement, std::initializer_list<sql::Param> params);
  [[noreturn]] void unsendable();  // libpq would not queue a statement
  // Ends the pipeline: sends Sync and reads the answer to everything sent, the last statement's
  // rows going to `on_row`; returns its count, or throws the first error.
  std::int64_t finish_pipeline(sql::RowVisitor on_row);

  pg_conn* conn_ = nullptr;
  std::unordered_map<const char*, std::string> prepared_;
  // Sent in pipeline mode and not answered yet, in order: a statement's preparation (its text)
  // or its execution (null).
  std::vector<const char*> in_flight_;
  // The reads among them (read_later): their place in in_flight_, and who wants their rows.
  std::vector<std::pair<std::size_t, std::function<void(const sql::Row&)>>> later_reads_;
  bool needs_reset_ = false;  // left in a state no statement can follow: broken() until reconnect
};

// Where a connection string leads, as libpq reads it: "user@host:port/dbname" (the parts it
// names), never its password; "" if libpq cannot read it.
std::string postgres_destination(const std::string& url);

}  // namespace billing
