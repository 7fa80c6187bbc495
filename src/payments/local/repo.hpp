#pragma once
// What the local payment provider asks of storage: its objects, kept across restarts, so that a
// subscription made before a restart still renews and its invoices are still listed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace billing {

// One of the local provider's objects as stored: a checkout session, customer, subscription,
// invoice or portal session (as JSON), an event not delivered yet (its payload), or its clock.
struct LocalObject {
  std::string kind;
  std::string id;
  std::int64_t version = 0;  // a later save of an object carries a higher version
  std::string data;
  friend bool operator==(const LocalObject&, const LocalObject&) = default;
};

class LocalProviderRepo {
 public:
  virtual ~LocalProviderRepo() = default;

  // Every object of `account` (LOCAL_PAYMENTS_ACCOUNT), in the order each was first saved.
  virtual std::vector<LocalObject> local_objects(std::string_view account) = 0;
  // Adds the object, or replaces the saved one unless that one's version is the same or higher
  // (two saves that finish in the other order leave the later state).
  virtual void save_local_object(std::string_view account, const LocalObject& object) = 0;
  virtual void delete_local_object(std::string_view account, std::string_view kind,
                                   std::string_view id) = 0;
};

}  // namespace billing
