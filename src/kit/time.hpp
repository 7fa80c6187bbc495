#pragma once
// ISO 8601 UTC text for timestamps: seconds for the API, microseconds for storage.
#include <optional>
#include <string>
#include <string_view>

#include "kit/clock.hpp"

namespace billing {

std::string iso8601(TimePoint t);                               // 2026-11-25T10:00:00Z
std::string iso8601_micros(TimePoint t);                        // 2026-11-25T10:00:00.123456Z
void append_iso8601_micros(std::string& out, TimePoint t);      // the same, appended
std::optional<TimePoint> parse_iso8601(std::string_view text);  // either form above
std::int64_t to_unix_micros(TimePoint t);
TimePoint from_unix_micros(std::int64_t micros);
// `months` calendar months after `t` in UTC, at the same time of day, the day of the month kept
// or, past the month's end, its last day (January 31 + 1 = February 28 or 29, + 2 = March 31).
TimePoint add_months(TimePoint t, int months);

}  // namespace billing
