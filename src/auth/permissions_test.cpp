#include "auth/permissions.hpp"

#include <gtest/gtest.h>

#include "kit/api_error.hpp"

namespace billing {
namespace {

// The seed's permission matrix, cell by cell: {action, admin, hospital, individual, assistant}.
struct Row {
  Action action;
  bool admin, hospital, individual, assistant;
};
constexpr Row kMatrix[] = {
    {Action::view_plans, true, true, true, false},
    {Action::view_services, true, true, true, true},
    {Action::select_services, true, true, false, false},
    {Action::view_current_plan, true, true, true, false},
    {Action::select_plan, true, true, true, false},
    {Action::issue_csrf_token, true, true, true, true},
};

TEST(Permissions, MatchTheSeedMatrix) {
  for (const auto& row : kMatrix) {
    EXPECT_EQ(allowed(Role::admin, row.action), row.admin);
    EXPECT_EQ(allowed(Role::hospital, row.action), row.hospital);
    EXPECT_EQ(allowed(Role::individual, row.action), row.individual);
    EXPECT_EQ(allowed(Role::assistant, row.action), row.assistant);
  }
  EXPECT_EQ(denial_detail(Action::select_services),
            "Only hospital administrators can select services");
}

int own_status(const Identity& caller, const EntityRef& entity) {
  try {
    require_own(caller, entity);
    return 200;
  } catch (const ApiError& e) {
    return e.status;
  }
}

TEST(Permissions, OwnEntitiesOnlyExceptForAdmins) {
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
