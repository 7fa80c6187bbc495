#include "storage/local_provider_store.hpp"

namespace billing {

std::vector<LocalObject> SqlLocalProviderRepo::local_objects(std::string_view account) {
  static constexpr sql::Query kList =
      "SELECT kind, id, version, data FROM local_provider_objects WHERE account = ? ORDER BY seq";
  std::vector<LocalObject> objects;
  db_.run(kList, {account}, [&](const sql::Row& row) {
    objects.push_back(LocalObject{.kind = std::string(row.text(0)),
                                  .id = std::string(row.text(1)),
                                  .version = row.integer(2),
                                  .data = std::string(row.text(3))});
  });
  return objects;
}

void SqlLocalProviderRepo::save_local_object(std::string_view account, const LocalObject& object) {
  static constexpr sql::Query kSave =
      "INSERT INTO local_provider_objects (account, kind, id, version, data) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, kind, id) DO UPDATE SET version = "
      "excluded.version, data = excluded.data "
      "WHERE local_provider_objects.version < excluded.version";
  db_.run(kSave, {account, object.kind, object.id, object.version, object.data});
}

void SqlLocalProviderRepo::delete_local_object(std::string_view account, std::string_view kind,
                                               std::string_view id) {
  static constexpr sql::Query kDelete =
      "DELETE FROM local_provider_objects WHERE account = ? AND kind = ? AND id = ?";
  db_.run(kDelete, {account, kind, id});
}

}  // namespace billing
