#include "core/money.hpp"

namespace billing {

boost::json::value money_json(Cents cents) {
  // Exact: cents and 100 are exact doubles and the division is correctly rounded, so the
  // shortest round-trip text of the result is the decimal amount itself.
  return static_cast<double>(cents) / 100.0;
}

}  // namespace billing
