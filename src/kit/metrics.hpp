#pragma once
// Prometheus metrics without a client library: counters, gauges and latency histograms whose
// label values are fixed at start (enums), and the text exposition format 0.0.4 that
// `GET /metrics` answers with. Recording is a relaxed atomic add: no lock, no allocation, no
// map lookup on the request path; a scrape reads the atomics as they are.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kit/enums.hpp"

namespace billing {

// Latency bucket upper bounds, in seconds (Prometheus' `le`); a last bucket takes the rest.
inline constexpr std::array<double, 11> kLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1.0};
// Per bucket, not cumulative; the last counts what is above every bound.
using LatencyBucketCounts = std::array<std::uint64_t, kLatencyBuckets.size() + 1>;
// The bucket a latency falls in.
std::size_t latency_bucket(std::chrono::nanoseconds latency);

struct Label {
  std::string_view name;
  std::string_view value;
};

// The exposition text: families in the order written, each with its # HELP and # TYPE.
class MetricsText {
 public:
  // `type`: counter, gauge or histogram.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  void sample(std::string_view name, std::span<const Label> labels, std::uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    sample(name, std::span(labels.begin(), labels.size()), value);
  }
  // A histogram's _bucket (cumulative, up to +Inf), _sum and _count lines.
  void histogram(std::string_view name, std::span<const Label> labels,
                 const LatencyBucketCounts& buckets, double sum_seconds);

  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::string_view suffix, std::span<const Label> labels,
              const Label* extra = nullptr);
  std::string out_;
};

// What GET /metrics prints: every part of the service adds a writer at start; a scrape calls
// them in that order.
class MetricsRegistry {
 public:
  using Writer = std::function<void(MetricsText&)>;
  void add(Writer writer) { writers_.push_back(std::move(writer)); }  // before serving
  std::string render() const;

 private:
  std::vector<Writer> writers_;
};

// The values a label takes: an enum's names (kit/enums.hpp), or, for std::optional of an enum,
// those and "none".
template <class T>
struct LabelValues {
  static constexpr std::size_t count = EnumNames<T>::names.size();
  static constexpr std::size_t index(T value) { return static_cast<std::size_t>(value); }
  static constexpr std::string_view name(std::size_t i) { return EnumNames<T>::names[i]; }
};
template <class E>
struct LabelValues<std::optional<E>> {
  static constexpr std::size_t count = LabelValues<E>::count + 1;
  static constexpr std::size_t index(const std::optional<E>& value) {
    return value ? LabelValues<E>::index(*value) : LabelValues<E>::count;
  }
  static constexpr std::string_view name(std::size_t i) {
    return i < LabelValues<E>::count ? LabelValues<E>::name(i) : "none";
  }
};

// One atomic per combination of label values, laid out as a mixed-radix number.
template <class Cell, class... Labels>
class LabeledCells {
 public:
  static constexpr std::size_t kLabels = sizeof...(Labels);
  using LabelNames = std::array<std::string_view, kLabels>;

  LabeledCells(std::string_view name, std::string_view help, LabelNames label_names)
      : name_(name), help_(help), label_names_(label_names) {}

 protected:
  static constexpr std::size_t kCells = (std::size_t{1} * ... * LabelValues<Labels>::count);

  static std::size_t cell_of(const Labels&... values) {
    std::size_t cell = 0;
    ((cell = cell * LabelValues<Labels>::count + LabelValues<Labels>::index(values)), ...);
    return cell;
  }
  // Calls `each(labels, cell)` for every combination, in order.
  template <class F>
  void for_each_cell(F&& each) const {
    constexpr std::array<std::size_t, kLabels> counts{LabelValues<Labels>::count...};
    constexpr std::array<std::string_view (*)(std::size_t), kLabels> names{
        &LabelValues<Labels>::name...};
    std::array<Label, kLabels> labels{};
    for (std::size_t cell = 0; cell < kCells; ++cell) {
      for (std::size_t i = kLabels, rest = cell; i-- > 0; rest /= counts[i])
        labels[i] = {label_names_[i], names[i](rest % counts[i])};
      each(std::span<const Label>(labels), cell);
    }
  }

  std::string_view name_;
  std::string_view help_;
  LabelNames label_names_;
  std::array<Cell, kCells> cells_{};
};

// A counter per combination of label values: `<name>{label="value",...} n`, zeros included, so
// that a rate over a series that has not moved yet is 0 rather than missing.
template <class... Labels>
class CounterFamily : public LabeledCells<std::atomic<std::uint64_t>, Labels...> {
  using Base = LabeledCells<std::atomic<std::uint64_t>, Labels...>;

 public:
  using Base::Base;
  void add(const Labels&... values) {
    this->cells_[Base::cell_of(values...)].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t value(const Labels&... values) const {
    return this->cells_[Base::cell_of(values...)].load(std::memory_order_relaxed);
  }
  void write(MetricsText& out) const {
    out.family(this->name_, "counter", this->help_);
    this->for_each_cell([&](std::span<const Label> labels, std::size_t cell) {
      out.sample(this->name_, labels, this->cells_[cell].load(std::memory_order_relaxed));
    });
  }
};

// A gauge per combination of label values.
template <class... Labels>
class GaugeFamily : public LabeledCells<std::atomic<std::int64_t>, Labels...> {
  using Base = LabeledCells<std::atomic<std::int64_t>, Labels...>;

 public:
  using Base::Base;
  void set(std::int64_t value, const Labels&... values) {
    this->cells_[Base::cell_of(values...)].store(value, std::memory_order_relaxed);
  }
  void add(std::int64_t delta, const Labels&... values) {
    this->cells_[Base::cell_of(values...)].fetch_add(delta, std::memory_order_relaxed);
  }
  std::int64_t value(const Labels&... values) const {
    return this->cells_[Base::cell_of(values...)].load(std::memory_order_relaxed);
  }
  void write(MetricsText& out) const {
    out.family(this->name_, "gauge", this->help_);
    this->for_each_cell([&](std::span<const Label> labels, std::size_t cell) {
      out.sample(this->name_, labels,
                 static_cast<double>(this->cells_[cell].load(std::memory_order_relaxed)));
    });
  }
};

struct LatencyCell {
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets{};
  std::atomic<std::uint64_t> sum_ns{0};
};

// A latency histogram (kLatencyBuckets) per combination of label values.
template <class... Labels>
class HistogramFamily : public LabeledCells<LatencyCell, Labels...> {
  using Base = LabeledCells<LatencyCell, Labels...>;

 public:
  using Base::Base;
  void observe(std::chrono::nanoseconds latency, const Labels&... values) {
    auto& cell = this->cells_[Base::cell_of(values...)];
    cell.buckets[latency_bucket(latency)].fetch_add(1, std::memory_order_relaxed);
    cell.sum_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(latency.count(), 0)),
                          std::memory_order_relaxed);
  }
  std::uint64_t count(const Labels&... values) const {
    std::uint64_t n = 0;
    for (const auto& b : this->cells_[Base::cell_of(values...)].buckets)
      n += b.load(std::memory_order_relaxed);
    return n;
  }
  void write(MetricsText& out) const {
    out.family(this->name_, "histogram", this->help_);
    this->for_each_cell([&](std::span<const Label> labels, std::size_t index) {
      const auto& cell = this->cells_[index];
      LatencyBucketCounts buckets{};
      for (std::size_t b = 0; b < buckets.size(); ++b)
        buckets[b] = cell.buckets[b].load(std::memory_order_relaxed);
      out.histogram(this->name_, labels, buckets,
                    static_cast<double>(cell.sum_ns.load(std::memory_order_relaxed)) / 1e9);
    });
  }
};

}  // namespace billing
