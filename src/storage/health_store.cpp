#include "storage/health_store.hpp"

namespace billing {

void SqlHealthRepo::ping() {
  static constexpr sql::Query kPing = "SELECT 1";
  db_.run(kPing, {});
}

}  // namespace billing
