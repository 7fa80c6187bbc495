#include "kit/cached_check.hpp"

namespace billing {

boost::asio::awaitable<void> CachedCheck::run() {
  std::exception_ptr error;
  bool check = false;
  {
    std::lock_guard lock(mutex_);
    const auto age = last_ ? now_() - last_->at : std::chrono::steady_clock::duration::max();
    if (age < fresh_for_)
      error = last_->error;
    else if (checking_)
      error = age < 2 * fresh_for_ ? last_->error : unknown_;
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
