#pragma once
// Numbered schema migrations, embedded from migrations/<dialect>/NNN_name.sql at build time.
#include <string_view>
#include <vector>

namespace billing {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

}  // namespace billing
