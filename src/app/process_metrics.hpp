#pragma once
// The process's own numbers on /metrics: resident memory, start time, open connections, and
// what was built.
#include <cstddef>

#include "kit/metrics.hpp"

namespace billing {

void write_process_metrics(MetricsText& out, std::size_t open_connections);

}  // namespace billing
