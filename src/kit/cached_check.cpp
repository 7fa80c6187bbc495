#include "kit/cached_check.hpp"

namespace billing {

boost::asio::awaitable<void> CachedCheck::run() {
  std::exception_ptr error;
  bool check = false;
  {
    std::lock_guard lock(mutex_);
    if (last_ && (checking_ || now_() - last_->at < fresh_for_))
      error = last_->error;
    else
      check = checking_ = true;
  }
  if (check) {
    try {
      co_await check_();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    last_ = Outcome{now_(), error};
    checking_ = false;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace billing
