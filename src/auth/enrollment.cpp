#include "auth/enrollment.hpp"

namespace billing {

boost::asio::awaitable<void> enroll(Db& db, Identity caller, TimePoint now) {
  switch (caller.role) {
    case Role::admin:
      co_return;
    case Role::assistant: {
      const auto hospital =
          co_await db.read([&](Repo& repo) { return repo.assistant_hospital(caller.entity_id); });
      if (hospital != caller.hospital_id)
        co_await db.transact(
            [&](Repo& repo) { repo.create_assistant(caller.entity_id, caller.hospital_id, now); });
      co_return;
    }
    case Role::hospital:
    case Role::individual: {
      const EntityRef entity{
          caller.role == Role::hospital ? EntityKind::hospital : EntityKind::individual,
          caller.entity_id};
      const bool known = co_await db.read([&](Repo& repo) { return repo.entity_exists(entity); });
      if (!known) co_await db.transact([&](Repo& repo) { repo.create_entity(entity, now); });
      co_return;
    }
  }
}

}  // namespace billing
