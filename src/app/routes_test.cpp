// The seed's permission matrix, cell by cell, as the domains declare it on their routes.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "app/app.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

struct Cell {
  bool admin, hospital, individual, assistant, csrf;
};

TEST(Routes, DeclareTheSeedPermissionMatrix) {
  const std::map<std::pair<std::string_view, std::string>, Cell> matrix{
      {{"GET", "/billing/health"}, {true, true, true, true, false}},  // public
      {{"GET", "/csrf-token"}, {true, true, true, true, false}},
      {{"GET", "/billing/plan"}, {true, true, true, false, false}},
      {{"GET", "/billing/plan/current"}, {true, true, true, false, false}},
      {{"POST", "/billing/plan/select"}, {true, true, true, false, true}},
      {{"GET", "/billing/services"}, {true, true, true, true, false}},
      {{"POST", "/billing/services/select"}, {true, true, false, false, true}},
      {{"POST", "/stripe/checkout"}, {false, true, true, false, true}},
      {{"POST", "/stripe/portal-link"}, {false, true, true, false, true}},
      {{"GET", "/stripe/subscription/{sub_id}"}, {true, true, true, false, false}},
      {{"POST", "/stripe/subscription/cancel"}, {true, true, true, false, true}},
      {{"GET", "/stripe/customer/{customer_id}/invoices"}, {true, true, true, false, false}},
      {{"GET", "/stripe/admin/customers"}, {true, false, false, false, false}},
      {{"GET", "/stripe/admin/subscriptions"}, {true, false, false, false, false}},
      {{"POST", "/stripe/webhook"}, {true, true, true, true, false}},  // Stripe's signature
      {{"GET", "/stripe/health"}, {true, true, true, true, false}},    // public
      {{"POST", "/stripe/local/clock/advance"}, {true, false, false, false, true}},
      // The local provider's pages: the unguessable session id in the path is the capability.
      {{"GET", "/local-pay/checkout/{session_id}"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/checkout/{session_id}"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/checkout/{session_id}/confirm"}, {true, true, true, true, false}},
      {{"GET", "/local-pay/portal/{portal_id}"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/portal/{portal_id}/pay"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/portal/{portal_id}/confirm"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/portal/{portal_id}/card"}, {true, true, true, true, false}},
      {{"POST", "/local-pay/portal/{portal_id}/cancel"}, {true, true, true, true, false}},
  };
  const std::set<std::string_view> open{"/billing/health", "/stripe/webhook", "/stripe/health"};
  auto db = testing::open_test_db("sqlite");
  const auto catalog = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  const SystemClock clock;
  const CsrfTokens csrf("secret", clock, std::chrono::minutes(1));
  Payments payments(Config{}, *db, catalog, clock, "http://127.0.0.1:8000");
  PlanMetrics plan_metrics;
  ServiceMetrics service_metrics;
  const Router router =
      all_routes(*db, catalog, clock, csrf, payments, plan_metrics, service_metrics);

  ASSERT_EQ(router.routes().size(), matrix.size());
  for (const Route* route : router.routes()) {
    SCOPED_TRACE(route->pattern);
    const auto cell = matrix.find({method_name(route->method), route->pattern});
    ASSERT_NE(cell, matrix.end()) << "a route the matrix does not know";
    const Policy& policy = route->policy;
    EXPECT_EQ(policy.needs_token(),
              !open.contains(route->pattern) && !route->pattern.starts_with("/local-pay/"));
    if (policy.needs_token()) {
      EXPECT_EQ(policy.admits(Role::admin), cell->second.admin);
      EXPECT_EQ(policy.admits(Role::hospital), cell->second.hospital);
      EXPECT_EQ(policy.admits(Role::individual), cell->second.individual);
      EXPECT_EQ(policy.admits(Role::assistant), cell->second.assistant);
    }
    EXPECT_EQ(policy.needs_csrf(), cell->second.csrf);
    EXPECT_EQ(policy.body_limit(),
              route->pattern == "/stripe/webhook" ? kLargeBodyLimit : kJsonBodyLimit);
  }
  const auto services = router.routes();
  const auto select_services = std::find_if(services.begin(), services.end(), [](const Route* r) {
    return r->pattern == "/billing/services/select";
  });
  EXPECT_EQ((*select_services)->policy.denial(),
            "Only hospital administrators can select services");
}

// The chain's security steps, present and in the order they must run: the caller is known before
// its role is checked, its role before its CSRF token, all of them before the rate limit and
// before storage is touched. Dropping one from app/middleware.hpp fails this build.
static_assert(Middleware::contains<RequestIds>() && Middleware::contains<AccessLog>() &&
              Middleware::contains<RouteMetrics>() && Middleware::contains<Authenticate>() &&
              Middleware::contains<AuthorizeRole>() && Middleware::contains<VerifyCsrf>() &&
              Middleware::contains<PlanRateLimit>() && Middleware::contains<Enrollment>());
static_assert(Middleware::position<RequestIds>() == 0);
static_assert(Middleware::position<Authenticate>() < Middleware::position<AuthorizeRole>());
static_assert(Middleware::position<AuthorizeRole>() < Middleware::position<VerifyCsrf>());
static_assert(Middleware::position<VerifyCsrf>() < Middleware::position<PlanRateLimit>());
static_assert(Middleware::position<PlanRateLimit>() < Middleware::position<Enrollment>());

}  // namespace
}  // namespace billing
