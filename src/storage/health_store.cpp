#include "storage/health_store.hpp"

namespace billing {

void SqlHealthRepo::ping() {
  static constexpr sql::Query kPing = "SELECT 1";
  db_.run(kPing, {});
}

void SqlHealthRepo::probe_write() {
  static constexpr sql::Query kProbe =
      "INSERT INTO storage_probe (id, writes) VALUES (1, 1) "
      "ON CONFLICT (id) DO UPDATE SET writes = storage_probe.writes + 1";
  db_.run(kProbe, {});
}

}  // namespace billing
