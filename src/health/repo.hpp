#pragma once
// What the health check asks of storage, inside a unit of work (core/db.hpp).
namespace billing {

class HealthRepo {
 public:
  virtual ~HealthRepo() = default;

  virtual void ping() = 0;  // a real round trip; throws when the database is unreachable
  // A write of one row (in a write unit), to learn whether the storage takes writes again.
  virtual void probe_write() = 0;
};

}  // namespace billing
