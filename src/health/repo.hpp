#pragma once
// What the health check asks of storage, inside a unit of work (core/db.hpp).
namespace billing {

class HealthRepo {
 public:
  virtual ~HealthRepo() = default;

  virtual void ping() = 0;  // a real round trip; throws when the database is unreachable
};

}  // namespace billing
