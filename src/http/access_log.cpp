#include "http/access_log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>

#include <spdlog/spdlog.h>

#include "kit/json.hpp"
#include "kit/log.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

constexpr std::size_t kUrgentBytes = 64 * 1024;  // a buffer this full wakes the writer early

std::atomic<std::uint64_t> next_log_id{1};

void append_integer(std::string& out, std::int64_t value) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

constexpr std::size_t kMaxBufferedBytes = 16 * 1024 * 1024;  // per thread, if stderr is stuck

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to write: the log is lost, the service goes on
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Whole lines. A regular file takes each write whole; to a pipe or a socket at most PIPE_BUF
// bytes a write where lines allow, which the pipe keeps in one piece, so that other writers to
// stderr (spdlog) cannot land inside a line.
void write_lines(int fd, std::string_view text, bool regular_file) {
  if (regular_file) return write_all(fd, text);
  while (!text.empty()) {
    auto end = text.size() <= PIPE_BUF ? text.size() : text.rfind('\n', PIPE_BUF - 1);
    if (end == std::string_view::npos) end = text.find('\n');  // a line longer than PIPE_BUF
    end = end == std::string_view::npos ? text.size() : std::min(end + 1, text.size());
    write_all(fd, text.substr(0, end));
    text.remove_prefix(end);
  }
}

bool is_regular_file(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

AccessLog::AccessLog(const Clock& clock, int fd, std::chrono::milliseconds flush_interval,
                     LogFormat format)
    : clock_(clock),
      fd_(fd),
      flush_interval_(flush_interval),
      format_(format),
      id_(next_log_id++),
      regular_file_(is_regular_file(fd)),
      writer_([this] { write_loop(); }) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(buffers_mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  flush();
}

AccessLog::Buffer& AccessLog::local_buffer() {
  thread_local struct {
    std::uint64_t log_id = 0;
    Buffer* buffer = nullptr;
  } mine;
  if (mine.log_id != id_) {
    std::lock_guard lock(buffers_mutex_);
    buffers_.push_back(std::make_unique<Buffer>());
    mine = {id_, buffers_.back().get()};
  }
  return *mine.buffer;
}

void AccessLog::append_line(std::string& out, const Call& call, const Response& response) const {
  const auto latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - call.started)
                              .count();
  const auto append_latency = [&] {  // milliseconds with three decimals, from whole microseconds
    append_integer(out, latency_us / 1000);
    const auto fraction = latency_us % 1000;
    out += '.';
    out += static_cast<char>('0' + fraction / 100);
    out += static_cast<char>('0' + fraction / 10 % 10);
    out += static_cast<char>('0' + fraction % 10);
  };
  const bool has_entity = call.identity && !call.identity->entity_id.empty();
  if (format_ == LogFormat::text) {
    append_iso8601_micros(out, clock_.now());
    out += " access ";
    out += method_name(call.request.method);
    out += ' ';
    out += call.route ? std::string_view(call.route->pattern) : std::string_view("-");
    out += ' ';
    append_integer(out, response.status);
    out += ' ';
    append_latency();
    out += "ms request_id=";
    append_text_value(out, call.request_id);
    if (call.identity) {
      out += " role=";
      out += name_of(call.identity->role);
    }
    if (has_entity) {
      out += " entity=";
      append_text_value(out, call.identity->entity_id);
    }
    return;
  }
  out += R"({"time":")";
  append_iso8601_micros(out, clock_.now());
  out += R"(","request_id":)";
  append_json_string(out, call.request_id);
  out += R"(,"method":")";
  out += method_name(call.request.method);
  out += R"(","route":)";
  if (call.route)
    append_json_string(out, call.route->pattern);
  else
    out += "null";
  out += R"(,"status":)";
  append_integer(out, response.status);
  out += R"(,"latency_ms":)";
  append_latency();
  out += R"(,"role":)";
  if (call.identity) {
    out += '"';
    out += name_of(call.identity->role);
    out += '"';
  } else {
    out += "null";
  }
  out += R"(,"entity":)";
  if (has_entity)
    append_json_string(out, call.identity->entity_id);
  else
    out += "null";
  out += '}';
}

std::string AccessLog::line(const Call& call, const Response& response) const {
  std::string out;
  append_line(out, call, response);
  return out;
}

void AccessLog::after(const Call& call, Response& response) {
  Buffer& buffer = local_buffer();
  bool urgent = false;
  {
    std::lock_guard lock(buffer.mutex);
    if (buffer.text.size() >= kMaxBufferedBytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    append_line(buffer.text, call, response);
    buffer.text += '\n';
    urgent = buffer.text.size() >= kUrgentBytes;
  }
  if (urgent && !urgent_.exchange(true)) wake_.notify_one();
}

void AccessLog::flush() {
  std::lock_guard flushing(flush_mutex_);
  std::vector<Buffer*> buffers;
  {
    std::lock_guard lock(buffers_mutex_);
    for (auto& b : buffers_) buffers.push_back(b.get());
  }
  for (Buffer* buffer : buffers) {
    {
      std::lock_guard lock(buffer->mutex);
      buffer->writing.swap(buffer->text);
    }
    write_lines(fd_, buffer->writing, regular_file_);
    buffer->writing.clear();  // keeps its capacity for the thread's next swap
  }
  if (const auto dropped = dropped_.exchange(0, std::memory_order_relaxed))
    spdlog::warn("access log: {} lines dropped, stderr did not keep up", dropped);
}

void AccessLog::write_loop() {
  std::unique_lock lock(buffers_mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, flush_interval_, [this] { return stopping_ || urgent_.load(); });
    urgent_ = false;
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace billing
