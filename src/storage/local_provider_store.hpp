#pragma once
#include "payments/local/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// LocalProviderRepo over either SQL backend: local_provider_objects.
class SqlLocalProviderRepo : public LocalProviderRepo {
 public:
  explicit SqlLocalProviderRepo(sql::Connection& connection) : db_(connection) {}

  std::vector<LocalObject> local_objects(std::string_view account) override;
  void save_local_object(std::string_view account, const LocalObject& object) override;
  void delete_local_object(std::string_view account, std::string_view kind,
                           std::string_view id) override;

 private:
  sql::Connection& db_;
};

}  // namespace billing
