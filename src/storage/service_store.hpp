#pragma once
#include "services/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// ServiceRepo over either SQL backend.
class SqlServiceRepo : public ServiceRepo {
 public:
  explicit SqlServiceRepo(sql::Connection& connection) : db_(connection) {}

  void save_services(const Plan& plan) override;

 private:
  sql::Connection& db_;
};

}  // namespace billing
