#include "kit/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace billing {
namespace {

using namespace std::chrono_literals;

enum class Color { red, green };

}  // namespace

template <>
struct EnumNames<Color> {
  static constexpr std::array<std::string_view, 2> names{"red", "green"};
};

namespace {

TEST(MetricsText, WritesFamiliesAndSamples) {
  MetricsText out;
  out.family("jobs_total", "counter", "Jobs done");
  const Label labels[] = {{"queue", "a"}, {"kind", "b"}};
  out.sample("jobs_total", labels, std::uint64_t{42});
  out.family("temperature", "gauge", "Degrees");
  out.sample("temperature", {}, 21.5);
  out.sample("temperature", {{"where", "out"}}, -INFINITY);
  EXPECT_EQ(out.take(),
            "# HELP jobs_total Jobs done\n"
            "# TYPE jobs_total counter\n"
            "jobs_total{queue=\"a\",kind=\"b\"} 42\n"
            "# HELP temperature Degrees\n"
            "# TYPE temperature gauge\n"
            "temperature 21.5\n"
            "temperature{where=\"out\"} -Inf\n");
}

TEST(MetricsText, EscapesLabelValuesAndHelp) {
  MetricsText out;
  out.family("x", "gauge", "a \\ b\nc \"quoted\"");
  out.sample("x", {{"path", "C:\\dir\n\"q\""}}, 1.0);
  EXPECT_EQ(out.take(),
            "# HELP x a \\\\ b\\nc \"quoted\"\n"
            "# TYPE x gauge\n"
            "x{path=\"C:\\\\dir\\n\\\"q\\\"\"} 1\n");
}

TEST(MetricsText, HistogramBucketsAreCumulative) {
  LatencyBucketCounts buckets{};
  buckets[0] = 2;                       // <= 0.5 ms
  buckets[3] = 1;                       // <= 5 ms
  buckets[kLatencyBuckets.size()] = 1;  // above a second
  MetricsText out;
  out.histogram("t_seconds", {{{"route", "/r"}}}, buckets, 2.5);
  const auto text = out.take();
  EXPECT_NE(text.find("t_seconds_bucket{route=\"/r\",le=\"0.0005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{route=\"/r\",le=\"0.001\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{route=\"/r\",le=\"0.005\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{route=\"/r\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{route=\"/r\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_sum{route=\"/r\"} 2.5\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_count{route=\"/r\"} 4\n"), std::string::npos);
}

TEST(LatencyBucket, BoundsAreInclusive) {
  EXPECT_EQ(latency_bucket(0ns), 0u);
  EXPECT_EQ(latency_bucket(500us), 0u);
  EXPECT_EQ(latency_bucket(501us), 1u);
  EXPECT_EQ(latency_bucket(1s), kLatencyBuckets.size() - 1);
  EXPECT_EQ(latency_bucket(2s), kLatencyBuckets.size());
}

TEST(CounterFamily, EveryCombinationWrittenZerosIncluded) {
  CounterFamily<Color, std::optional<Color>> counter{"paint_total", "Paint", {"color", "over"}};
  counter.add(Color::green, std::nullopt);
  counter.add(Color::green, std::nullopt);
  counter.add(Color::red, Color::green);
  EXPECT_EQ(counter.value(Color::green, std::nullopt), 2u);
  EXPECT_EQ(counter.value(Color::red, Color::red), 0u);
  MetricsText out;
  counter.write(out);
  EXPECT_EQ(out.take(),
            "# HELP paint_total Paint\n"
            "# TYPE paint_total counter\n"
            "paint_total{color=\"red\",over=\"red\"} 0\n"
            "paint_total{color=\"red\",over=\"green\"} 1\n"
            "paint_total{color=\"red\",over=\"none\"} 0\n"
            "paint_total{color=\"green\",over=\"red\"} 0\n"
            "paint_total{color=\"green\",over=\"green\"} 0\n"
            "paint_total{color=\"green\",over=\"none\"} 2\n");
}

TEST(CounterFamily, CountsFromManyThreads) {
  CounterFamily<> counter{"n_total", "N", {}};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) counter.add();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 40'000u);
}

TEST(GaugeFamily, SetsAndAdds) {
  GaugeFamily<Color> gauge{"level", "Level", {"color"}};
  gauge.set(5, Color::red);
  gauge.add(-2, Color::red);
  gauge.add(1, Color::green);
  MetricsText out;
  gauge.write(out);
  EXPECT_EQ(out.take(),
            "# HELP level Level\n"
            "# TYPE level gauge\n"
            "level{color=\"red\"} 3\n"
            "level{color=\"green\"} 1\n");
}

TEST(HistogramFamily, ObservesIntoBuckets) {
  HistogramFamily<Color> histogram{"wait_seconds", "Wait", {"color"}};
  histogram.observe(300us, Color::red);
  histogram.observe(2s, Color::red);
  EXPECT_EQ(histogram.count(Color::red), 2u);
  EXPECT_EQ(histogram.count(Color::green), 0u);
  MetricsText out;
  histogram.write(out);
  const auto text = out.take();
  EXPECT_NE(text.find("wait_seconds_bucket{color=\"red\",le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("wait_seconds_bucket{color=\"red\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("wait_seconds_sum{color=\"red\"} 2.0003\n"), std::string::npos);
  EXPECT_NE(text.find("wait_seconds_count{color=\"green\"} 0\n"), std::string::npos);
}

TEST(MetricsRegistry, RendersItsWritersInOrder) {
  MetricsRegistry registry;
  registry.add([](MetricsText& out) { out.family("a", "gauge", "A"); });
  registry.add([](MetricsText& out) { out.family("b", "gauge", "B"); });
  EXPECT_EQ(registry.render(), "# HELP a A\n# TYPE a gauge\n# HELP b B\n# TYPE b gauge\n");
}

}  // namespace
}  // namespace billing
