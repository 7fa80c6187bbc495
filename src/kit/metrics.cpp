#include "kit/metrics.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace billing {
namespace {

// Label values escape backslash, double quote and newline; HELP text backslash and newline.
void append_escaped(std::string& out, std::string_view text, bool quotes) {
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quotes)
      out += "\\\"";
    else
      out += c;
  }
}

void append_value(std::string& out, double value) {
  if (std::isnan(value))
    out += "NaN";
  else if (std::isinf(value))
    out += value > 0 ? "+Inf" : "-Inf";
  else
    fmt::format_to(std::back_inserter(out), "{}", value);
}

}  // namespace

std::size_t latency_bucket(std::chrono::nanoseconds latency) {
  const double seconds = std::chrono::duration<double>(latency).count();
  return static_cast<std::size_t>(
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
      kLatencyBuckets.begin());
}

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void MetricsText::series(std::string_view name, std::string_view suffix,
                         std::span<const Label> labels, const Label* extra) {
  out_ += name;
  out_ += suffix;
  if (labels.empty() && !extra) {
    out_ += ' ';
    return;
  }
  char separator = '{';
  const auto add = [&](const Label& label) {
    out_ += separator;
    out_ += label.name;
    out_ += "=\"";
    append_escaped(out_, label.value, true);
    out_ += '"';
    separator = ',';
  };
  for (const Label& label : labels) add(label);
  if (extra) add(*extra);
  out_ += "} ";
}

void MetricsText::sample(std::string_view name, std::span<const Label> labels, double value) {
  series(name, "", labels);
  append_value(out_, value);
  out_ += '\n';
}

void MetricsText::sample(std::string_view name, std::span<const Label> labels,
                         std::uint64_t value) {
  series(name, "", labels);
  fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

void MetricsText::histogram(std::string_view name, std::span<const Label> labels,
                            const LatencyBucketCounts& buckets, double sum_seconds) {
  std::uint64_t cumulative = 0;
  std::string bound;
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    cumulative += buckets[b];
    bound.clear();
    append_value(bound, b < kLatencyBuckets.size() ? kLatencyBuckets[b] : INFINITY);
    const Label le{"le", bound};
    series(name, "_bucket", labels, &le);
    fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
  }
  series(name, "_sum", labels);
  append_value(out_, sum_seconds);
  out_ += '\n';
  series(name, "_count", labels);
  fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
}

std::string MetricsRegistry::render() const {
  MetricsText text;
  for (const auto& write : writers_) write(text);
  return text.take();
}

}  // namespace billing
