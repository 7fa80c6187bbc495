#include "kit/time.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <ctime>

#include <fmt/format.h>

namespace billing {
namespace {

std::tm utc_parts(TimePoint t) {
  const std::time_t secs =
      std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm parts{};
  gmtime_r(&secs, &parts);
  return parts;
}

std::string seconds_text(const std::tm& p) {
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", p.tm_year + 1900, p.tm_mon + 1,
                     p.tm_mday, p.tm_hour, p.tm_min, p.tm_sec);
}

bool read_int(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > text.size()) return false;
  const char* first = text.data() + pos;
  auto [ptr, ec] = std::from_chars(first, first + len, out);
  return ec == std::errc{} && ptr == first + len;
}

}  // namespace

std::string iso8601(TimePoint t) {
  return seconds_text(utc_parts(t)) + "Z";
}

std::string iso8601_micros(TimePoint t) {
  std::string out;
  append_iso8601_micros(out, t);
  return out;
}

void append_iso8601_micros(std::string& out, TimePoint t) {
  // Per thread, the text of the last second seen: a log line a request needs no calendar math.
  thread_local std::int64_t cached_second = INT64_MIN;
  thread_local std::string cached_text;
  const auto micros = to_unix_micros(t);
  auto second = micros / 1'000'000;
  auto frac = micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --second;
  }
  if (second != cached_second) {
    cached_text = seconds_text(utc_parts(t));
    cached_second = second;
  }
  out += cached_text;
  char digits[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 6; i >= 1; --i, frac /= 10) digits[i] = static_cast<char>('0' + frac % 10);
  out.append(digits, sizeof digits);
}

TimePoint add_months(TimePoint t, int months) {
  using namespace std::chrono;
  const auto midnight = floor<days>(t);
  const year_month_day date{midnight};
  const year_month month = year_month{date.year(), date.month()} + std::chrono::months(months);
  const day last = year_month_day_last{month.year(), month_day_last{month.month()}}.day();
  const year_month_day shifted{month.year(), month.month(), std::min(date.day(), last)};
  return TimePoint(sys_days(shifted)) + (t - midnight);
}

std::optional<TimePoint> parse_iso8601(std::string_view text) {
  std::tm p{};
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text.back() != 'Z')
    return std::nullopt;
  int year = 0, month = 0, day = 0;
  if (!read_int(text, 0, 4, year) || !read_int(text, 5, 2, month) || !read_int(text, 8, 2, day) ||
      !read_int(text, 11, 2, p.tm_hour) || !read_int(text, 14, 2, p.tm_min) ||
      !read_int(text, 17, 2, p.tm_sec))
    return std::nullopt;
  p.tm_year = year - 1900;
  p.tm_mon = month - 1;
  p.tm_mday = day;
  int micros = 0;
  if (text.size() == 27 && text[19] == '.') {
    if (!read_int(text, 20, 6, micros)) return std::nullopt;
  } else if (text.size() != 20) {
    return std::nullopt;
  }
  const std::time_t secs = timegm(&p);
  return std::chrono::system_clock::from_time_t(secs) + std::chrono::microseconds(micros);
}

std::int64_t to_unix_micros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint from_unix_micros(std::int64_t micros) {
  return TimePoint(
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(micros)));
}

}  // namespace billing
