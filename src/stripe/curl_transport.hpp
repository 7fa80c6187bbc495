#pragma once
// One blocking HTTP exchange over libcurl, on the calling thread's own easy handle: each thread
// keeps its handle (and so its open connections to Stripe) from one exchange to the next.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace billing::stripe {

struct HttpExchange {
  bool post = false;  // POST `body` as a form, else GET
  std::string url;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{20000};
};

struct HttpOutcome {
  std::optional<std::string> transport_error;  // set when no HTTP response arrived
  long status = 0;
  std::string body;
};

// Safe to call from several threads at once (one handle each). Call curl_global_init_once()
// before any thread calls it.
HttpOutcome perform(const HttpExchange& exchange);

// libcurl's global initialisation, which must not race with the first use of a handle.
void curl_global_init_once();

}  // namespace billing::stripe
