#include "storage/postgres/connection.hpp"

#include <charconv>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace billing {
namespace {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class ResultRow final : public sql::Row {
 public:
  ResultRow(const PGresult* r, int row) : r_(r), row_(row) {}
  bool is_null(int column) const override { return PQgetisnull(r_, row_, column) != 0; }
  std::string_view text(int column) const override {
    return {PQgetvalue(r_, row_, column), static_cast<std::size_t>(PQgetlength(r_, row_, column))};
  }
  std::int64_t integer(int column) const override {
    const auto t = text(column);
    std::int64_t value = 0;
    std::from_chars(t.data(), t.data() + t.size(), value);
    return value;
  }

 private:
  const PGresult* r_;
  int row_;
};

// Throws with the server's message and SQLSTATE unless the result is a success.
Result checked(pg_conn* conn, PGresult* raw) {
  Result result(raw);
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  throw std::runtime_error(
      fmt::format("postgres: {} (SQLSTATE {})", PQerrorMessage(conn), state ? state : "none"));
}

// Queries are written with SQLite's `?` placeholders; PostgreSQL wants $1..$n. Every `?` is a
// placeholder: our SQL has none inside string literals, quoted names or comments (nor jsonb's
// `?` operators).
std::string numbered_placeholders(std::string_view statement) {
  std::string text;
  int next = 0;
  for (char c : statement) {
    if (c == '?')
      text += '$' + std::to_string(++next);
    else
      text += c;
  }
  return text;
}

}  // namespace

PostgresConnection::PostgresConnection(const std::string& url) {
  // Our defaults come first so that anything in the URL overrides them.
  const char* keywords[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {"3", "billing",
                          "-c statement_timeout=10000 -c client_min_messages=warning", url.c_str(),
                          nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = conn_ ? PQerrorMessage(conn_) : "out of memory";
    PQfinish(conn_);
    throw std::runtime_error("cannot connect to PostgreSQL: " + message);
  }
}

PostgresConnection::~PostgresConnection() {
  PQfinish(conn_);
}

bool PostgresConnection::broken() const {
  return PQstatus(conn_) != CONNECTION_OK;
}

void PostgresConnection::reconnect() {
  prepared_.clear();
  PQreset(conn_);
  if (broken()) throw std::runtime_error(std::string("cannot reconnect: ") + PQerrorMessage(conn_));
}

void PostgresConnection::exec(std::string_view script) {
  checked(conn_, PQexec(conn_, std::string(script).c_str()));
}

const std::string& PostgresConnection::statement_name(const char* statement) {
  auto found = prepared_.find(statement);
  if (found != prepared_.end()) return found->second;
  std::string name = fmt::format("s{}", prepared_.size());
  checked(conn_,
          PQprepare(conn_, name.c_str(), numbered_placeholders(statement).c_str(), 0, nullptr));
  return prepared_.emplace(statement, std::move(name)).first->second;
}

std::int64_t PostgresConnection::run(const sql::Query& query,
                                     std::initializer_list<sql::Param> params,
                                     sql::RowVisitor on_row) {
  const std::string& name = statement_name(query.text(sql::Dialect::postgres));
  // libpq wants NUL-terminated text parameters.
  std::vector<std::string> texts;
  texts.reserve(params.size());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const sql::Param& p : params) {
    if (const auto* text = std::get_if<std::string_view>(&p)) {
      values.push_back(texts.emplace_back(*text).c_str());
    } else if (const auto* number = std::get_if<std::int64_t>(&p)) {
      values.push_back(texts.emplace_back(std::to_string(*number)).c_str());
    } else {
      values.push_back(nullptr);
    }
  }
  Result result =
      checked(conn_, PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()),
                                    values.data(), nullptr, nullptr, 0));
  if (PQresultStatus(result.get()) == PGRES_COMMAND_OK) {
    std::int64_t changed = 0;
    const char* tuples = PQcmdTuples(result.get());
    std::from_chars(tuples, tuples + std::char_traits<char>::length(tuples), changed);
    return changed;
  }
  const int rows = PQntuples(result.get());
  if (on_row)
    for (int i = 0; i < rows; ++i) on_row(ResultRow(result.get(), i));
  return rows;
}

}  // namespace billing
