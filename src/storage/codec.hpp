#pragma once
// How domain values are spelled in the database (the same in both backends).
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/entity.hpp"
#include "core/service_type.hpp"
#include "kit/clock.hpp"
#include "storage/sql.hpp"

// A PostgreSQL timestamptz column printed as SQLite stores timestamps (ISO 8601, microseconds, Z),
// for a query whose two dialects differ only there.
#define BILLING_PG_ISO8601(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

namespace billing {

std::string encode_services(const std::vector<ServiceType>& services);  // "privacy,checklist"
std::vector<ServiceType> decode_services(std::string_view text);        // throws on unknown

// Parses a stored enum name; a bad value means a corrupt row, which is an internal error.
template <class E>
E decode_enum(std::string_view text) {
  if (auto value = parse_enum<E>(text)) return *value;
  throw std::runtime_error("unexpected value in database: " + std::string(text));
}

TimePoint decode_time(std::string_view text);  // ISO 8601, as both backends print it

std::optional<std::string> optional_text(const sql::Row& row, int column);
std::optional<std::int64_t> optional_integer(const sql::Row& row, int column);
sql::Param optional_param(const std::optional<std::string>& value);
sql::Param optional_param(const std::optional<std::int64_t>& value);

template <class E>
sql::Param optional_enum(const std::optional<E>& value) {
  if (value) return name_of(*value);
  return nullptr;
}

template <class E>
std::optional<E> optional_decoded(const sql::Row& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return decode_enum<E>(row.text(column));
}

// Hospitals and individuals live in tables of their own, and plans and history rows name their
// owner in a column of each kind, so statements about an owner come in pairs: {hospital,
// individual}.
template <class T>
const T& for_kind(const T (&pair)[2], EntityKind kind) {
  return pair[static_cast<std::size_t>(kind)];
}

// Whether the rows a batch writes to one table go to `connection` as one statement (JsonRows), or
// a statement each. On PostgreSQL each statement costs the server its protocol and executor
// overhead; SQLite runs statements at once, in the process, where a statement per row costs less
// than building the JSON and unpacking it.
inline bool writes_rows_as_one(const sql::Connection& connection) {
  return connection.dialect() == sql::Dialect::postgres;
}

// The rows of a statement that writes many at once, as its one parameter: a JSON array of
// objects, which the statement reads with jsonb_array_elements or jsonb_populate_recordset
// (PostgreSQL: writes_rows_as_one). Values as the row's parameters would be: text, integers, NULL.
class JsonRows {
 public:
  void add(std::initializer_list<std::pair<std::string_view, sql::Param>> columns);
  bool empty() const { return text_.size() == 1; }
  std::string_view text();  // the array, closed; add nothing after

 private:
  std::string text_ = "[";
};

// Runs `query`, which takes `rows` as its one parameter, unless there are none.
inline void write_rows(sql::Connection& connection, const sql::Query& query, JsonRows& rows) {
  if (!rows.empty()) connection.run_later(query, {rows.text()});
}

// The owner's id in the column of its kind, NULL in the other: hospital_id, individual_id.
inline sql::Param owner_column(const EntityRef& owner, EntityKind column) {
  if (owner.kind == column) return std::string_view(owner.id);
  return nullptr;
}

}  // namespace billing
