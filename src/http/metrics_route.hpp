#pragma once
// GET /metrics: the registry's Prometheus text. With a token (METRICS_TOKEN), only for
// `Authorization: Bearer <token>`, compared in constant time; 401 otherwise. The route needs no
// JWT: Prometheus has none.
#include <string>

#include "http/route.hpp"
#include "kit/metrics.hpp"

namespace billing {

// `token` empty: open to anyone who reaches the socket.
void add_metrics_route(Router& router, const MetricsRegistry& metrics, std::string token);

}  // namespace billing
