#include "storage/postgres/connection.hpp"

#include <charconv>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "core/db.hpp"

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

bool succeeded(const PGresult* result) {
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

// The server's message and SQLSTATE for a result that is not a success.
std::string failure_text(pg_conn* conn, const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* message = result ? PQresultErrorMessage(result) : "";
  return fmt::format("postgres: {} (SQLSTATE {})", *message ? message : PQerrorMessage(conn),
                     state ? state : "none");
}

// Whether a failed result says the server's storage takes no writes: disk full (53100), an
// I/O error (58030), or a server that is read-only (25006: a standby, say).
bool storage_fault(const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (!state) return false;
  const std::string_view code = state;
  return code == "53100" || code == "58030" || code == "25006";
}

// Throws failure_text, as a StorageFault if `storage_fault`.
[[noreturn]] void throw_failure(std::string text, bool storage_fault) {
  if (storage_fault) throw StorageFault(text);
  throw std::runtime_error(text);
}

// Throws with the server's message and SQLSTATE unless the result is a success.
Result checked(pg_conn* conn, PGresult* raw) {
  Result result(raw);
  if (!succeeded(result.get()))
    throw_failure(failure_text(conn, result.get()), storage_fault(result.get()));
  return result;
}

// The rows changed by a command, or the rows of a query, each given to `on_row`.
std::int64_t rows_of(const PGresult* result, sql::RowVisitor on_row) {
  if (PQresultStatus(result) == PGRES_COMMAND_OK) {
    std::int64_t changed = 0;
    const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
    std::from_chars(tuples, tuples + std::char_traits<char>::length(tuples), changed);
    return changed;
  }
  const int rows = PQntuples(result);
  if (on_row)
    for (int i = 0; i < rows; ++i) on_row(ResultRow(result, i));
  return rows;
}

// The parameters as libpq takes them: NUL-terminated texts, null pointers for NULL.
class ParamTexts {
 public:
  explicit ParamTexts(std::initializer_list<sql::Param> params) {
    texts_.reserve(params.size());  // no reallocation: values_ points into the texts
    values_.reserve(params.size());
    for (const sql::Param& p : params) {
      if (const auto* text = std::get_if<std::string_view>(&p)) {
        values_.push_back(texts_.emplace_back(*text).c_str());
      } else if (const auto* number = std::get_if<std::int64_t>(&p)) {
        values_.push_back(texts_.emplace_back(std::to_string(*number)).c_str());
      } else {
        values_.push_back(nullptr);
      }
    }
  }
  int count() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }

 private:
  std::vector<std::string> texts_;
  std::vector<const char*> values_;
};

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

// A prepared statement's name: its text's address, which no other text has (a statement whose
// preparation failed is prepared again under the same name).
std::string statement_name_for(const char* statement) {
  return fmt::format("s{}", static_cast<const void*>(statement));
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
  try {
    keep_commits_durable();
  } catch (...) {
    PQfinish(conn_);  // no destructor runs for a constructor that throws
    throw;
  }
}

// A commit answers only once its WAL is flushed here: a 200 means the change is kept. The
// server's, database's or role's `synchronous_commit = off`, or one in the URL's options, would
// answer before. Every other setting waits for that flush (and some for a standby too), so it
// stays. A pooler that shares server connections between sessions (PgBouncer's transaction mode)
// would not keep this session's setting: there the server's own must be on.
void PostgresConnection::keep_commits_durable() {
  const Result shown = checked(conn_, PQexec(conn_, "SHOW synchronous_commit"));
  if (std::string_view(PQgetvalue(shown.get(), 0, 0)) != "off") return;
  checked(conn_, PQexec(conn_, "SET synchronous_commit = on"));
  spdlog::warn("postgres: synchronous_commit was off for billing's connection; set to on");
}

PostgresConnection::~PostgresConnection() {
  PQfinish(conn_);
}

bool PostgresConnection::broken() const {
  return needs_reset_ || PQstatus(conn_) != CONNECTION_OK;
}

void PostgresConnection::reconnect() {
  prepared_.clear();
  in_flight_.clear();
  later_reads_.clear();
  needs_reset_ = false;
  PQreset(conn_);
  if (broken()) throw std::runtime_error(std::string("cannot reconnect: ") + PQerrorMessage(conn_));
  try {
    keep_commits_durable();
  } catch (...) {
    needs_reset_ = true;  // not to be used without the setting
    throw;
  }
}

void PostgresConnection::exec(std::string_view script) {
  settle();
  checked(conn_, PQexec(conn_, std::string(script).c_str()));
}

const std::string& PostgresConnection::statement_name(const char* statement) {
  auto found = prepared_.find(statement);
  if (found != prepared_.end()) return found->second;
  std::string name = statement_name_for(statement);
  checked(conn_,
          PQprepare(conn_, name.c_str(), numbered_placeholders(statement).c_str(), 0, nullptr));
  return prepared_.emplace(statement, std::move(name)).first->second;
}

std::int64_t PostgresConnection::run(const sql::Query& query,
                                     std::initializer_list<sql::Param> params,
                                     sql::RowVisitor on_row) {
  const char* statement = query.text(sql::Dialect::postgres);
  if (!in_flight_.empty()) {
    send(statement, params);
    return finish_pipeline(on_row);
  }
  const std::string& name = statement_name(statement);
  const ParamTexts texts(params);
  const Result result = checked(conn_, PQexecPrepared(conn_, name.c_str(), texts.count(),
                                                      texts.values(), nullptr, nullptr, 0));
  return rows_of(result.get(), on_row);
}

void PostgresConnection::run_later(const sql::Query& query,
                                   std::initializer_list<sql::Param> params) {
  if (in_flight_.empty() && PQenterPipelineMode(conn_) != 1)
    throw std::runtime_error(failure_text(conn_, nullptr));
  send(query.text(sql::Dialect::postgres), params);
}

void PostgresConnection::read_later(const sql::Query& query,
                                    std::initializer_list<sql::Param> params,
                                    std::function<void(const sql::Row&)> on_row) {
  run_later(query, params);
  later_reads_.emplace_back(in_flight_.size() - 1, std::move(on_row));
}

void PostgresConnection::settle() {
  if (!in_flight_.empty()) finish_pipeline({});
}

void PostgresConnection::unsendable() {
  // What was sent before cannot be told from what was not: the connection starts afresh.
  needs_reset_ = true;
  throw std::runtime_error(failure_text(conn_, nullptr));
}

void PostgresConnection::send(const char* statement, std::initializer_list<sql::Param> params) {
  auto found = prepared_.find(statement);
  if (found == prepared_.end()) {
    std::string name = statement_name_for(statement);
    if (PQsendPrepare(conn_, name.c_str(), numbered_placeholders(statement).c_str(), 0, nullptr) !=
        1)
      unsendable();
    in_flight_.push_back(statement);
    found = prepared_.emplace(statement, std::move(name)).first;
  }
  const ParamTexts texts(params);
  if (PQsendQueryPrepared(conn_, found->second.c_str(), texts.count(), texts.values(), nullptr,
                          nullptr, 0) != 1)
    unsendable();
  in_flight_.push_back(nullptr);
}

std::int64_t PostgresConnection::finish_pipeline(sql::RowVisitor on_row) {
  std::string error;
  bool error_is_storage_fault = false;
  Result last;
  std::vector<Result> read_results;  // of later_reads_, in order
  auto later_read = later_reads_.begin();
  if (PQpipelineSync(conn_) != 1) error = failure_text(conn_, nullptr);
  for (std::size_t i = 0; i < in_flight_.size(); ++i) {
    Result result(PQgetResult(conn_));
    if (!result) {  // the connection is gone: nothing more will come
      if (error.empty()) error = failure_text(conn_, nullptr);
      needs_reset_ = true;
      break;
    }
    while (PGresult* end = PQgetResult(conn_)) PQclear(end);  // the null after each statement
    const char* prepared = in_flight_[i];
    if (!succeeded(result.get())) {
      // An error, or a statement skipped after one (PGRES_PIPELINE_ABORTED).
      if (error.empty()) {
        error = failure_text(conn_, result.get());
        error_is_storage_fault = storage_fault(result.get());
      }
      if (prepared) prepared_.erase(prepared);  // to be prepared again
    } else if (later_read != later_reads_.end() && later_read->first == i) {
      read_results.push_back(std::move(result));
      ++later_read;
    } else if (i + 1 == in_flight_.size()) {
      last = std::move(result);
    }
  }
  in_flight_.clear();
  auto reads = std::move(later_reads_);
  later_reads_.clear();
  const Result sync(PQgetResult(conn_));  // PGRES_PIPELINE_SYNC
  // Still in pipeline mode, it would refuse every statement run without one: start afresh.
  if (PQexitPipelineMode(conn_) != 1) needs_reset_ = true;
  if (!error.empty()) throw_failure(std::move(error), error_is_storage_fault);
  if (needs_reset_) throw std::runtime_error(failure_text(conn_, nullptr));
  // The rows only now, the pipeline over: a visitor that throws leaves the connection sound.
  for (std::size_t i = 0; i < read_results.size(); ++i)
    rows_of(read_results[i].get(), reads[i].second);
  return rows_of(last.get(), on_row);
}

std::string postgres_destination(const std::string& url) {
  char* error = nullptr;
  const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(url.c_str(), &error), &PQconninfoFree);
  PQfreemem(error);
  if (!options) return "";
  std::string_view user, host, port, dbname;
  for (const auto* option = options.get(); option->keyword; ++option) {
    if (!option->val) continue;
    const std::string_view keyword = option->keyword;
    if (keyword == "user") user = option->val;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = option->val;
    if (keyword == "port") port = option->val;
    if (keyword == "dbname") dbname = option->val;
  }
  std::string out;
  if (!user.empty()) out.append(user).append("@");
  out.append(host);
  if (!port.empty()) out.append(":").append(port);
  if (!dbname.empty()) out.append("/").append(dbname);
  return out;
}

}  // namespace billing
