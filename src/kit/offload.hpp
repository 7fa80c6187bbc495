#pragma once
// Runs blocking work on another executor and resumes the awaiting coroutine on its own one,
// rethrowing there whatever the work threw. The caller's executor is kept busy meanwhile, so
// its io_context does not run out of work while the result is on its way back.
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billing {

namespace asio = boost::asio;

template <class Executor, class F>
asio::awaitable<std::invoke_result_t<F&>> offload(Executor target, F fn) {
  using Result = std::invoke_result_t<F&>;
  using Slot = std::conditional_t<std::is_void_v<Result>, bool, std::optional<Result>>;
  Slot slot{};
  std::exception_ptr error;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&](auto handler) {
        auto caller = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(target, [&, handler = std::move(handler), caller = std::move(caller)]() mutable {
          try {
            if constexpr (std::is_void_v<Result>)
              fn();
            else
              slot.emplace(fn());
          } catch (...) {
            error = std::current_exception();
          }
          auto home = caller.get_executor();
          asio::post(home, [handler = std::move(handler), caller = std::move(caller)]() mutable {
            caller.reset();
            std::move(handler)();
          });
        });
      },
      asio::use_awaitable);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<Result>) co_return std::move(*slot);
}

}  // namespace billing
