#include "entities/enrollment.hpp"

#include "entities/repo.hpp"

namespace billing {

bool Enrollment::known(const Identity& caller) const {
  std::shared_lock lock(mutex_);
  switch (caller.role) {
    case Role::admin:
      return true;
    case Role::hospital:
      return hospitals_.contains(std::string_view(caller.entity_id));
    case Role::individual:
      return individuals_.contains(std::string_view(caller.entity_id));
    case Role::assistant: {
      const auto found = assistants_.find(std::string_view(caller.entity_id));
      return found != assistants_.end() && found->second == caller.hospital_id;
    }
  }
  return false;
}

void Enrollment::remember(const Identity& caller) {
  std::lock_guard lock(mutex_);
  switch (caller.role) {
    case Role::admin:
      break;
    case Role::hospital:
      hospitals_.insert(caller.entity_id);
      break;
    case Role::individual:
      individuals_.insert(caller.entity_id);
      break;
    case Role::assistant:
      assistants_.insert_or_assign(caller.entity_id, caller.hospital_id);
      break;
  }
}

boost::asio::awaitable<void> Enrollment::enroll(Identity caller, TimePoint now) {
  if (caller.role == Role::assistant) {
    const auto hospital = co_await db_.read(
        [&](Tx& tx) { return tx.get<EntityRepo>().assistant_hospital(caller.entity_id); });
    if (hospital != caller.hospital_id)
      co_await db_.transact([&](Tx& tx) {
        tx.get<EntityRepo>().create_assistant(caller.entity_id, caller.hospital_id, now);
      });
  } else {
    const EntityRef entity{
        caller.role == Role::hospital ? EntityKind::hospital : EntityKind::individual,
        caller.entity_id};
    const bool exists =
        co_await db_.read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(entity); });
    if (!exists)
      co_await db_.transact([&](Tx& tx) { tx.get<EntityRepo>().create_entity(entity, now); });
  }
  remember(caller);
}

}  // namespace billing
