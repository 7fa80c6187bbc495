#pragma once
#include "health/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// HealthRepo over either SQL backend.
class SqlHealthRepo : public HealthRepo {
 public:
  explicit SqlHealthRepo(sql::Connection& connection) : db_(connection) {}

  void ping() override;
  void probe_write() override;

 private:
  sql::Connection& db_;
};

}  // namespace billing
