#pragma once
// The access log: one line per request on stderr, JSON or text as LOG_FORMAT says (time, request
// id, method, route pattern, status, latency, caller's role and entity; never a token, a CSRF
// value or a body). Lines are
// appended to a buffer of the serving thread and written by a background thread, so a request
// never waits on the terminal or the disk.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/route.hpp"
#include "kit/clock.hpp"
#include "kit/log.hpp"

namespace billing {

class AccessLog {
 public:
  // Writes to `fd` at least every `flush_interval`, and sooner when a buffer grows large.
  explicit AccessLog(const Clock& clock, int fd = 2,
                     std::chrono::milliseconds flush_interval = std::chrono::milliseconds(100),
                     LogFormat format = LogFormat::json);
  ~AccessLog();  // writes what is left
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void after(const Call& call, Response& response);
  void flush();  // writes everything buffered now

  // The line for one request, without the newline (for tests).
  std::string line(const Call& call, const Response& response) const;

 private:
  // Two strings a thread, swapped by the writer: a string stays with the thread that grew it,
  // so no thread frees memory of another thread's malloc arena (which takes that arena's lock).
  struct Buffer {
    std::mutex mutex;  // the serving thread and the writer; held for an append or a swap
    std::string text;
    std::string writing;  // the writer's, under flush_mutex_
  };
  Buffer& local_buffer();
  void append_line(std::string& out, const Call& call, const Response& response) const;
  void write_loop();

  const Clock& clock_;
  const int fd_;
  const std::chrono::milliseconds flush_interval_;
  const LogFormat format_;
  const std::uint64_t id_;   // tells this log's thread-local buffers from another's
  const bool regular_file_;  // else a pipe or socket: writes of at most PIPE_BUF

  std::mutex flush_mutex_;    // one flush at a time (the writer's, a test's, the destructor's)
  std::mutex buffers_mutex_;  // guards buffers_ (a thread's first line) and the writer's wait
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> urgent_{false};
  std::atomic<std::uint64_t> dropped_{0};  // lines not kept while a buffer was full
  std::thread writer_;
};

}  // namespace billing
