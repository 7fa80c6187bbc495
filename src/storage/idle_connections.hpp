#pragma once
// Idle database connections, shared by the threads that run units of work, taken and put back
// without a lock: each slot holds one idle connection or nothing.
#include <array>
#include <atomic>
#include <memory>

namespace billing {

template <class Connection>
class IdleConnections {
 public:
  static constexpr std::size_t kSlots = 64;  // more than a pool ever holds (DATABASE_POOL_SIZE)

  IdleConnections() = default;
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;
  ~IdleConnections() {
    for (auto& slot : slots_) delete slot.exchange(nullptr);
  }

  // An idle connection, or null when there is none.
  std::unique_ptr<Connection> take() {
    for (auto& slot : slots_)
      if (slot.load(std::memory_order_relaxed))
        if (auto* connection = slot.exchange(nullptr, std::memory_order_acquire))
          return std::unique_ptr<Connection>(connection);
    return nullptr;
  }

  // Keeps `connection` for the next take(); closes it if every slot is full.
  void put(std::unique_ptr<Connection> connection) {
    for (auto& slot : slots_) {
      Connection* empty = nullptr;
      if (slot.compare_exchange_strong(empty, connection.get(), std::memory_order_release)) {
        connection.release();
        return;
      }
    }
  }

 private:
  std::array<std::atomic<Connection*>, kSlots> slots_{};
};

}  // namespace billing
