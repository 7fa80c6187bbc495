#pragma once
// Runs a coroutine to completion on a private io_context. For start-up, the CLI and tests:
// never call it from a thread that serves requests.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace billing {

template <class T>
T run_blocking(boost::asio::awaitable<T> work) {
  boost::asio::io_context ioc;
  auto result = boost::asio::co_spawn(ioc, std::move(work), boost::asio::use_future);
  ioc.run();
  return result.get();
}

}  // namespace billing
