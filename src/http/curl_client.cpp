#include "http/curl_client.hpp"

#include <stdexcept>

#include <curl/curl.h>

namespace billing {

namespace {

struct EasyHandle {
  CURL* curl = curl_easy_init();
  char error[CURL_ERROR_SIZE] = {};  // curl's detail on the last failure
  EasyHandle() {
    if (!curl) throw std::runtime_error("curl_easy_init failed");
  }
  ~EasyHandle() { curl_easy_cleanup(curl); }
  EasyHandle(const EasyHandle&) = delete;
  EasyHandle& operator=(const EasyHandle&) = delete;
};

struct HeaderList {
  curl_slist* list = nullptr;
  HeaderList() = default;
  ~HeaderList() { curl_slist_free_all(list); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  void add(const std::string& line) {
    curl_slist* grown = curl_slist_append(list, line.c_str());
    if (!grown) throw std::bad_alloc();
    list = grown;
  }
};

std::size_t append_to_string(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

void curl_global_init_once() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK)
    throw std::runtime_error(std::string("curl_global_init: ") + curl_easy_strerror(result));
}

HttpOutcome perform_blocking(const HttpExchange& exchange) {
  thread_local EasyHandle handle;
  CURL* curl = handle.curl;
  // Clears the previous exchange's options; the handle keeps its connections.
  curl_easy_reset(curl);

  HeaderList headers;
  for (const auto& line : exchange.headers) headers.add(line);
  // curl would otherwise wait up to a second for "100 Continue" before sending a larger body.
  headers.add("Expect:");

  HttpOutcome outcome;
  char* error = handle.error;
  error[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_URL, exchange.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &outcome.body);
  // Timeouts without SIGALRM: signals are not ours to take in a multithreaded server.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(exchange.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(exchange.total_timeout.count()));
  if (exchange.post) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, exchange.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(exchange.body.size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }

  const CURLcode result = curl_easy_perform(curl);
  if (result != CURLE_OK) {
    outcome.transport_error = curl_easy_strerror(result);
    if (error[0] != '\0') outcome.transport_error->append(": ").append(error);
    return outcome;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &outcome.status);
  for (const auto& name : exchange.response_headers) {
    curl_header* header = nullptr;
    const bool found =
        curl_easy_header(curl, name.c_str(), 0, CURLH_HEADER, -1, &header) == CURLHE_OK;
    outcome.header_values.emplace_back(found ? header->value : "");
  }
  return outcome;
}

}  // namespace billing
