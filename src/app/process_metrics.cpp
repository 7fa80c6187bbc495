#include "app/process_metrics.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string_view>

namespace billing {
namespace {

// Set while the program starts, long before the first scrape.
const auto kStarted = std::chrono::system_clock::now();

// The resident set from /proc/self/statm (its second field, in pages); 0 where there is none.
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long total = 0, resident = 0;
  if (!(statm >> total >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

void write_process_metrics(MetricsText& out, std::size_t open_connections) {
  out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes");
  out.sample("process_resident_memory_bytes", {}, resident_bytes());
  out.family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds");
  out.sample("process_start_time_seconds", {},
             std::chrono::duration<double>(kStarted.time_since_epoch()).count());
  out.family("billing_http_open_connections", "gauge",
             "Client connections open now, on every listening socket");
  out.sample("billing_http_open_connections", {}, static_cast<double>(open_connections));
  out.family("billing_build_info", "gauge", "Always 1; the labels say what is running");
  // BILLING_VERSION is CMake's project version, empty while the project declares none.
  constexpr std::string_view version = BILLING_VERSION;
  out.sample("billing_build_info",
             {{"version", version.empty() ? "unknown" : version},
              {"build_type", BILLING_BUILD_TYPE},
              {"compiler", __VERSION__}},
             1.0);
}

}  // namespace billing
