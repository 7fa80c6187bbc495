#include "payments/provider_retries.hpp"

namespace billing {

std::string provider_failure(const std::exception& e) {
  if (const auto* api = dynamic_cast<const ApiError*>(&e))
    return "provider answered " + std::to_string(api->status);
  return e.what();
}

}  // namespace billing
