#pragma once
// An HTTP client for outbound calls (Stripe's API): one blocking exchange over libcurl, on the
// calling thread's own easy handle, so each thread keeps its open connections from one exchange
// to the next. Blocking: run it on a pool of its own (kit/offload.hpp), never on an I/O thread.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace billing {

struct HttpExchange {
  bool post = false;  // POST `body` as application/x-www-form-urlencoded, else GET
  std::string url;
  std::string body;
  std::vector<std::string> headers;           // "Name: value"
  std::vector<std::string> response_headers;  // names of the answer's headers to return
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{20000};
};

struct HttpOutcome {
  std::optional<std::string> transport_error;  // set when no HTTP response arrived
  long status = 0;
  std::string body;
  std::vector<std::string> header_values;  // of response_headers, in order; "" if absent
};

// Safe to call from several threads at once (one handle each). Call curl_global_init_once()
// before any thread calls it.
HttpOutcome perform_blocking(const HttpExchange& exchange);

// libcurl's global initialisation, which must not race with the first use of a handle.
void curl_global_init_once();

}  // namespace billing
