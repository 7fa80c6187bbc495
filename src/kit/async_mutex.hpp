#pragma once
// A mutex a coroutine holds across co_await: those that want it wait their turn, first come first
// served, without blocking their thread. For steps that must not interleave with another
// caller's, such as a change and the commit that makes it durable.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billing {

class AsyncMutex {
 public:
  // The mutex, held until released or destroyed.
  class Turn {
   public:
    explicit Turn(AsyncMutex& mutex) : mutex_(&mutex) {}
    Turn(Turn&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
    Turn& operator=(Turn&&) = delete;
    ~Turn() { release(); }
    void release() {
      if (AsyncMutex* mutex = std::exchange(mutex_, nullptr)) mutex->unlock();
    }

   private:
    AsyncMutex* mutex_;
  };

  boost::asio::awaitable<Turn> lock() {
    // The channel holds one token: putting it in waits while another holder's is there.
    co_await slot_.async_send(boost::system::error_code{}, boost::asio::use_awaitable);
    co_return Turn(*this);
  }

 private:
  void unlock() {
    slot_.try_receive([](boost::system::error_code) {});
  }

  boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> slot_{
      boost::asio::system_executor(), 1};
};

}  // namespace billing
