#include "kit/clock.hpp"

namespace billing {

TimePoint SystemClock::now() const {
  return std::chrono::system_clock::now();
}

}  // namespace billing
