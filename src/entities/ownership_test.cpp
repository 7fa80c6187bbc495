#include "entities/ownership.hpp"

#include <gtest/gtest.h>

#include "kit/api_error.hpp"

namespace billing {
namespace {

int own_status(const Identity& caller, const EntityRef& entity) {
  try {
    require_own(caller, entity);
    return 200;
  } catch (const ApiError& e) {
    return e.status;
  }
}

TEST(Ownership, OwnEntitiesOnlyExceptForAdmins) {
  const EntityRef h1{EntityKind::hospital, "h1"};
  const EntityRef i1{EntityKind::individual, "h1"};
  EXPECT_EQ(own_status({"a", Role::admin, "", ""}, h1), 200);
  EXPECT_EQ(own_status({"a", Role::admin, "", ""}, i1), 200);
  EXPECT_EQ(own_status({"u", Role::hospital, "h1", ""}, h1), 200);
  EXPECT_EQ(own_status({"u", Role::hospital, "h2", ""}, h1), 403);
  EXPECT_EQ(own_status({"u", Role::hospital, "h1", ""}, i1), 403);
  EXPECT_EQ(own_status({"u", Role::individual, "h1", ""}, i1), 200);
  EXPECT_EQ(own_status({"u", Role::individual, "h1", ""}, h1), 403);
  EXPECT_EQ(own_status({"u", Role::assistant, "h1", "h1"}, h1), 403);
}

}  // namespace
}  // namespace billing
