#include "storage/service_store.hpp"

#include <stdexcept>

#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {

void SqlServiceRepo::save_services(const Plan& plan) {
  static constexpr sql::Query kSave =
      "UPDATE plans SET selected_services = ?, updated_at = ? WHERE id = ?";
  const auto changed = db_.run(
      kSave, {encode_services(plan.selected_services), iso8601_micros(plan.updated_at), plan.id});
  // The rules found the plan in this same unit: a missing row is a bug, not a quiet no-op.
  if (changed == 0) throw std::logic_error("save_services: no plan " + plan.id);
}

}  // namespace billing
