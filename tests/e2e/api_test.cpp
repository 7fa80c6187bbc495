// End-to-end tests of the billing API: the real binary, over HTTP, on SQLite and (when
// BILLING_TEST_POSTGRES_URL is set) PostgreSQL. Every test uses ids of its own, so tests can share
// a server and a database.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <latch>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "client.hpp"
#include "kit/time.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::UnorderedElementsAre;

// ---------------------------------------------------------------------------------------------
// One server per backend, shared by the tests of a suite.

class ServerPool {
 public:
  static BillingServer& get(const std::string& backend) {
    auto& server = servers()[backend];
    if (!server) server = BillingServer::for_backend(backend);
    return *server;
  }
  static void release() { servers().clear(); }

 private:
  static std::map<std::string, std::unique_ptr<BillingServer>>& servers() {
    static std::map<std::string, std::unique_ptr<BillingServer>> all;
    return all;
  }
};

// ---------------------------------------------------------------------------------------------
// The people of one test, with ids nobody else uses.

enum class Who {
  anonymous,
  admin,
  hospital,
  other_hospital,
  individual,
  other_individual,
  assistant
};

struct World {
  std::string hospital = unique_id("hosp");
  std::string other_hospital = unique_id("hosp");
  std::string individual = unique_id("ind");
  std::string other_individual = unique_id("ind");
  std::string assistant = unique_id("asst");
  std::string missing = unique_id("nobody");  // never makes a request
  std::string admin_subject = unique_id("admin");

  Identity identity(Who who) const {
    switch (who) {
      case Who::admin:
        return admin_user(admin_subject);
      case Who::hospital:
        return hospital_user(hospital);
      case Who::other_hospital:
        return hospital_user(other_hospital);
      case Who::individual:
        return individual_user(individual);
      case Who::other_individual:
        return individual_user(other_individual);
      case Who::assistant:
        return assistant_user(assistant, hospital);
      case Who::anonymous:
        break;
    }
    throw std::logic_error("anonymous has no identity");
  }

  // "{hospital}" and friends replaced by this world's ids.
  std::string fill(std::string text) const {
    const std::pair<std::string_view, const std::string*> names[] = {
        {"{hospital}", &hospital},     {"{other_hospital}", &other_hospital},
        {"{individual}", &individual}, {"{other_individual}", &other_individual},
        {"{missing}", &missing},
    };
    for (const auto& [name, value] : names)
      for (auto at = text.find(name); at != std::string::npos; at = text.find(name, at))
        text.replace(at, name.size(), *value);
    return text;
  }
};

enum class Csrf { none, valid, garbage, other_user, expired, wrong_secret };

// What exists before a table-driven case runs.
enum class Setup {
  fresh,                   // nobody has made a request yet
  enrolled,                // every role has made one request (entity rows exist)
  plans_active,            // + an admin chose lite for {hospital} and {individual}
  hospital_plan_inactive,  // enrolled, and the hospital chose pro itself: inactive until paid
};

const std::vector<std::string> kLiteDefaults{"privacy", "human_escalation", "checklist"};

std::vector<std::string> strings(const json::value& value) {
  std::vector<std::string> out;
  for (const auto& item : value.as_array()) out.emplace_back(item.as_string());
  return out;
}

std::string services_body(const std::string& hospital_id,
                          const std::vector<std::string>& services) {
  json::array list;
  for (const auto& s : services) list.emplace_back(s);
  return json::serialize(json::object{{"hospital_id", hospital_id}, {"services", std::move(list)}});
}

std::string plan_body(std::string_view plan_type, const std::string& id) {
  return json::serialize(json::object{{"plan_type", plan_type}, {"id", id}});
}

// A test's view of the API: tokens and CSRF tokens per person, requests as that person.
class Session {
 public:
  explicit Session(BillingServer& s) : server(s), client(s.port()) {}

  BillingServer& server;
  World world;
  HttpClient client;

  const std::string& token(Who who) {
    auto& token = tokens_[who];
    if (token.empty()) token = sign_token(world.identity(who));
    return token;
  }
  const std::string& csrf(Who who) {
    auto& csrf = csrf_[who];
    if (csrf.empty()) csrf = fetch_csrf_token(client, token(who));
    return csrf;
  }
  std::string csrf(Who who, Csrf mode) {
    const auto subject = world.identity(who).subject;
    switch (mode) {
      case Csrf::valid:
        return csrf(who);
      case Csrf::garbage:
        return "garbage.token";
      case Csrf::other_user:
        return csrf(who == Who::other_hospital ? Who::hospital : Who::other_hospital);
      case Csrf::expired:
        return forge_csrf_token(subject, std::chrono::system_clock::now() - 2h);
      case Csrf::wrong_secret:
        return forge_csrf_token(subject, std::chrono::system_clock::now(), "another-csrf-secret");
      case Csrf::none:
        break;
    }
    return {};
  }

  Headers headers(Who who, Csrf mode = Csrf::none) {
    Headers out;
    if (who == Who::anonymous) return out;
    out = bearer(token(who));
    if (mode != Csrf::none) out.emplace_back("X-CSRF-Token", csrf(who, mode));
    return out;
  }

  HttpResponse get(Who who, const std::string& target) {
    return client.get(world.fill(target), headers(who));
  }
  HttpResponse post(Who who, const std::string& target, const std::string& body,
                    Csrf mode = Csrf::valid) {
    return client.post(world.fill(target), world.fill(body), headers(who, mode));
  }
  HttpResponse select_plan(Who who, std::string_view plan_type, const std::string& id) {
    return post(who, "/billing/plan/select", plan_body(plan_type, id));
  }
  HttpResponse select_services(Who who, const std::string& hospital_id,
                               const std::vector<std::string>& services) {
    return post(who, "/billing/services/select", services_body(hospital_id, services));
  }

  // A request that must succeed, as a step of a test's setup.
  json::object ok(const HttpResponse& response) {
    EXPECT_EQ(response.status, 200) << response.body;
    const auto value = response.json();
    return value.is_object() ? value.as_object() : json::object{};
  }

  void enroll_everyone() {
    for (Who who : {Who::hospital, Who::other_hospital, Who::individual, Who::other_individual,
                    Who::assistant, Who::admin})
      csrf(who);  // any authenticated request creates the caller's entity row
  }

  void prepare(Setup setup) {
    if (setup == Setup::fresh) return;
    enroll_everyone();
    if (setup == Setup::enrolled) return;
    if (setup == Setup::hospital_plan_inactive) {
      ok(select_plan(Who::hospital, "pro", world.hospital));
      return;
    }
    ok(select_plan(Who::admin, "lite", world.hospital));
    ok(select_plan(Who::admin, "lite", world.individual));
  }

 private:
  std::map<Who, std::string> tokens_;
  std::map<Who, std::string> csrf_;
};

std::string backend_of(const std::string& backend) {
  return backend;
}
template <class Row>
std::string backend_of(const std::tuple<std::string, Row>& param) {
  return std::get<0>(param);
}

// The base of every API suite: a session on the backend's shared server.
template <class Param>
class ApiTest : public testing::TestWithParam<Param> {
 protected:
  static void TearDownTestSuite() { ServerPool::release(); }
  void SetUp() override {
    session_ = std::make_unique<Session>(ServerPool::get(backend_of(this->GetParam())));
  }
  Session& api() { return *session_; }
  World& world() { return session_->world; }

 private:
  std::unique_ptr<Session> session_;
};

template <class Row>
std::string case_name(const testing::TestParamInfo<std::tuple<std::string, Row>>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
}

// ---------------------------------------------------------------------------------------------
// Happy paths, endpoint by endpoint

class E2eApi : public ApiTest<std::string> {};

TEST_P(E2eApi, HealthIsPublicAndHealthy) {
  const auto response = api().client.get("/billing/health");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.header("content-type"), "application/json");
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("status"), "healthy");
  EXPECT_TRUE(parse_iso8601(body.at("timestamp").as_string())) << response.body;
}

TEST_P(E2eApi, CsrfTokenForEveryRole) {
  for (Who who : {Who::admin, Who::hospital, Who::individual, Who::assistant}) {
    SCOPED_TRACE(world().identity(who).subject);
    const auto response = api().get(who, "/csrf-token");
    ASSERT_EQ(response.status, 200) << response.body;
    const auto body = response.json().as_object();
    EXPECT_EQ(body.size(), 2u) << response.body;
    EXPECT_FALSE(body.at("csrf_token").as_string().empty());
    const auto expires = parse_iso8601(body.at("expires_at").as_string());
    ASSERT_TRUE(expires) << response.body;
    EXPECT_GT(*expires, std::chrono::system_clock::now());
  }
}

TEST_P(E2eApi, CsrfTokenOfTheCallerIsAcceptedRepeatedly) {
  api().enroll_everyone();
  const auto csrf = fetch_csrf_token(api().client, api().token(Who::admin));
  for (std::string_view plan : {"lite", "pro"}) {
    Headers headers = bearer(api().token(Who::admin));
    headers.emplace_back("X-CSRF-Token", csrf);
    const auto response =
        api().client.post("/billing/plan/select", plan_body(plan, world().hospital), headers);
    EXPECT_EQ(response.status, 200) << response.body;
  }
}

TEST_P(E2eApi, ValidTokensAreAcceptedWhateverTheSchemeCase) {
  // The control for E2eTokens: the claims the forgeries start from are fine when signed.
  const auto token = sign_token(hospital_user(world().hospital));
  EXPECT_EQ(api().client.get("/billing/plan", bearer(token)).status, 200);
  EXPECT_EQ(api().client.get("/billing/plan", {{"Authorization", "bearer " + token}}).status, 200);
}

TEST_P(E2eApi, PlanCatalogForHospitalHasExactPrices) {
  const auto response = api().get(Who::hospital, "/billing/plan");
  ASSERT_EQ(response.status, 200) << response.body;
  for (std::string_view money :
       {R"("price_monthly":499.0)", R"("price_yearly":4790.4)", R"("price_monthly":999.0)",
        R"("price_yearly":9590.4)", R"("current_plan":null)"})
    EXPECT_THAT(response.body, HasSubstr(std::string(money)));
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("user_role"), "hospital");
  EXPECT_TRUE(body.at("current_plan").is_null());
  EXPECT_TRUE(body.at("current_plan_details").is_null());
  const auto& plans = body.at("plans").as_array();
  ASSERT_EQ(plans.size(), 2u);
  const std::pair<const char*, std::int64_t> expected[] = {{"lite", 5}, {"pro", 50}};
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const auto& plan = plans[i].as_object();
    EXPECT_EQ(plan.at("plan_type"), expected[i].first);
    EXPECT_EQ(plan.at("max_agents"), expected[i].second);
    EXPECT_EQ(plan.at("role"), "hospital");
    for (const char* field : {"name", "description", "model_tier"})
      EXPECT_FALSE(plan.at(field).as_string().empty()) << field;
    EXPECT_TRUE(plan.at("features").is_array());
    EXPECT_TRUE(plan.at("is_recommended").is_bool());
  }
  EXPECT_EQ(plans[0].at("model_tier"), "basic");
  EXPECT_EQ(plans[1].at("model_tier"), "premium");
  EXPECT_EQ(strings(plans[0].at("default_services")), kLiteDefaults);
}

TEST_P(E2eApi, PlanCatalogForIndividualHasExactPrices) {
  const auto response = api().get(Who::individual, "/billing/plan");
  ASSERT_EQ(response.status, 200) << response.body;
  for (std::string_view money : {R"("price_monthly":49.0)", R"("price_yearly":470.4)",
                                 R"("price_monthly":99.0)", R"("price_yearly":950.4)"})
    EXPECT_THAT(response.body, HasSubstr(std::string(money)));
  EXPECT_THAT(response.body, testing::Not(HasSubstr("499.0")));
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("user_role"), "individual");
  EXPECT_TRUE(body.at("current_plan").is_null());
  const auto& plans = body.at("plans").as_array();
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].at("max_agents"), 1);
  EXPECT_EQ(plans[1].at("max_agents"), 2);
  EXPECT_EQ(plans[1].at("model_tier"), "advanced");
}

TEST_P(E2eApi, PlanCatalogForAdminListsEveryOffer) {
  const auto response = api().get(Who::admin, "/billing/plan");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("user_role"), "admin");
  EXPECT_EQ(body.at("plans").as_array().size(), 4u);
  EXPECT_TRUE(body.at("current_plan").is_null());
  for (std::string_view money : {"499.0", "4790.4", "9590.4", "470.4", "950.4"})
    EXPECT_THAT(response.body, HasSubstr(std::string(money)));
}

TEST_P(E2eApi, PlanCatalogShowsTheCurrentPlan) {
  api().ok(api().select_plan(Who::hospital, "pro", world().hospital));
  const auto own = api().get(Who::hospital, "/billing/plan").json().as_object();
  EXPECT_EQ(own.at("current_plan"), "pro");
  const auto& details = own.at("current_plan_details").as_object();
  EXPECT_EQ(text(details.at("hospital_id")), world().hospital);
  EXPECT_EQ(details.at("status"), "inactive");

  const auto as_admin =
      api().get(Who::admin, "/billing/plan?entity_id={hospital}").json().as_object();
  EXPECT_EQ(as_admin.at("current_plan"), "pro");
  EXPECT_EQ(as_admin.at("plans").as_array().size(), 2u);  // the hospital's offers
}

TEST_P(E2eApi, ServicesWithoutAPlan) {
  const auto hospital = api().get(Who::hospital, "/billing/services");
  ASSERT_EQ(hospital.status, 200) << hospital.body;
  const auto body = hospital.json().as_object();
  EXPECT_TRUE(body.at("plan_type").is_null());
  EXPECT_TRUE(body.at("status").is_null());
  std::vector<std::string> ids;
  for (const auto& item : body.at("services").as_array()) {
    const auto& service = item.as_object();
    ids.emplace_back(service.at("id").as_string());
    EXPECT_FALSE(service.at("name").as_string().empty());
    EXPECT_FALSE(service.at("description").as_string().empty());
    for (const char* flag : {"is_default", "is_selected", "is_available"})
      EXPECT_EQ(service.at(flag), false) << flag << " of " << ids.back();
  }
  EXPECT_THAT(ids, ElementsAre("checkpoint", "primary", "checklist", "medication", "nutrition",
                               "privacy", "summary", "human_escalation"));

  const auto individual = api().get(Who::individual, "/billing/services").json();
  ASSERT_EQ(individual.at("services").as_array().size(), 1u);
  EXPECT_EQ(individual.at("services").at(0).at("id"), "primary");
}

TEST_P(E2eApi, ServicesOfAnActiveLitePlan) {
  api().prepare(Setup::plans_active);
  const auto response = api().get(Who::hospital, "/billing/services");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("plan_type"), "lite");
  EXPECT_EQ(body.at("status"), "active");
  EXPECT_EQ(body.at("max_optional_services"), 1);
  std::map<std::string, std::array<bool, 3>> flags;
  for (const auto& item : body.at("services").as_array())
    flags[std::string(item.at("id").as_string())] = {item.at("is_default").as_bool(),
                                                     item.at("is_selected").as_bool(),
                                                     item.at("is_available").as_bool()};
  using Flags = std::array<bool, 3>;  // default, selected, available
  EXPECT_EQ(flags["privacy"], (Flags{true, true, true}));
  EXPECT_EQ(flags["human_escalation"], (Flags{true, true, true}));
  EXPECT_EQ(flags["checklist"], (Flags{true, true, true}));
  EXPECT_EQ(flags["medication"], (Flags{false, false, true}));
  EXPECT_EQ(flags["nutrition"], (Flags{false, false, true}));
  EXPECT_EQ(flags["summary"], (Flags{false, false, false}));
  EXPECT_EQ(flags["checkpoint"], (Flags{false, false, false}));

  // An assistant sees its hospital's services; an admin can ask for any entity's.
  EXPECT_EQ(api().get(Who::assistant, "/billing/services").body, response.body);
  EXPECT_EQ(api().get(Who::admin, "/billing/services?entity_id={hospital}").body, response.body);
}

// A plan awaiting payment lists its offer and default selection, none of it usable yet (the
// lifecycle test checks a suspended one).
TEST_P(E2eApi, ServicesOfAPlanAwaitingPaymentAreNotAvailable) {
  api().prepare(Setup::hospital_plan_inactive);
  const auto response = api().get(Who::hospital, "/billing/services");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = response.json().as_object();
  EXPECT_EQ(body.at("plan_type"), "pro");
  EXPECT_EQ(body.at("status"), "inactive");
  std::vector<std::string> selected;
  for (const auto& item : body.at("services").as_array()) {
    EXPECT_EQ(item.at("is_available"), false) << item.at("id");
    if (item.at("is_selected").as_bool()) selected.emplace_back(item.at("id").as_string());
  }
  EXPECT_EQ(selected, (std::vector<std::string>{"checklist", "privacy", "human_escalation"}));
  EXPECT_EQ(api().get(Who::assistant, "/billing/services").body, response.body);
}

TEST_P(E2eApi, ServicesForAdminWithoutEntityListTheWholeCatalog) {
  const auto response = api().get(Who::admin, "/billing/services");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = response.json();
  const auto& services = body.at("services").as_array();
  EXPECT_EQ(services.size(), 8u);
  for (const auto& service : services) EXPECT_EQ(service.at("is_available"), true);
}

TEST_P(E2eApi, SelectServicesAddsDefaultsInCatalogOrder) {
  api().prepare(Setup::plans_active);
  const struct {
    std::vector<std::string> requested, selected;
  } cases[] = {
      {{"medication"}, {"privacy", "human_escalation", "checklist", "medication"}},
      {{}, kLiteDefaults},
      {{"nutrition", "checklist", "privacy"},
       {"privacy", "human_escalation", "checklist", "nutrition"}},
      {{"medication", "medication"}, {"privacy", "human_escalation", "checklist", "medication"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(services_body(world().hospital, c.requested));
    const auto plan = api().ok(api().select_services(Who::hospital, world().hospital, c.requested));
    EXPECT_EQ(strings(plan.at("selected_services")), c.selected);
    EXPECT_EQ(text(plan.at("hospital_id")), world().hospital);
    EXPECT_EQ(plan.at("plan_type"), "lite");
    EXPECT_EQ(plan.at("status"), "active");
    EXPECT_EQ(plan.at("max_agents"), 5);
    EXPECT_THAT(strings(plan.at("available_services")),
                ElementsAre("privacy", "human_escalation", "checklist", "medication", "nutrition"));
    EXPECT_TRUE(parse_iso8601(plan.at("created_at").as_string()));
    EXPECT_TRUE(parse_iso8601(plan.at("updated_at").as_string()));
  }
}

TEST_P(E2eApi, SelectServicesOnProAllowsEveryService) {
  api().enroll_everyone();
  api().ok(api().select_plan(Who::admin, "pro", world().hospital));
  const auto plan = api().ok(
      api().select_services(Who::admin, world().hospital,
                            {"summary", "nutrition", "checkpoint", "medication", "primary"}));
  EXPECT_THAT(strings(plan.at("selected_services")),
              ElementsAre("checkpoint", "primary", "checklist", "medication", "nutrition",
                          "privacy", "summary", "human_escalation"));
  EXPECT_EQ(plan.at("max_agents"), 50);
}

TEST_P(E2eApi, CurrentPlanForAdminAndOwners) {
  api().prepare(Setup::plans_active);
  const auto as_admin = api().get(Who::admin, "/billing/plan/current?entity_id={hospital}");
  ASSERT_EQ(as_admin.status, 200) << as_admin.body;
  const auto plan = as_admin.json().as_object();
  EXPECT_EQ(text(plan.at("hospital_id")), world().hospital);
  EXPECT_EQ(plan.at("plan_type"), "lite");
  EXPECT_EQ(plan.at("status"), "active");
  EXPECT_EQ(plan.at("max_agents"), 5);
  EXPECT_EQ(plan.at("model_tier"), "basic");
  EXPECT_EQ(strings(plan.at("selected_services")), kLiteDefaults);
  EXPECT_THAT(std::string(plan.at("id").as_string()), testing::StartsWith("plan_"));

  EXPECT_EQ(api().get(Who::hospital, "/billing/plan/current").body, as_admin.body);
  EXPECT_EQ(api().get(Who::admin, "/billing/plan/current?entity_id={hospital}&role=hospital").body,
            as_admin.body);

  const auto individual = api().get(Who::individual, "/billing/plan/current");
  ASSERT_EQ(individual.status, 200) << individual.body;
  EXPECT_EQ(text(individual.json().at("individual_id")), world().individual);
  EXPECT_EQ(strings(individual.json().at("selected_services")),
            std::vector<std::string>{"primary"});
  EXPECT_EQ(api().get(Who::admin, "/billing/plan/current?entity_id={individual}").body,
            individual.body);
}

TEST_P(E2eApi, PlanSelectionByAdminIsActiveAndByOwnerInactive) {
  api().enroll_everyone();
  const struct {
    Who who;
    const std::string& id;
    const char* plan_type;
    const char* status;
    int max_agents;
    const char* owner_field;
  } cases[] = {
      {Who::hospital, world().hospital, "pro", "inactive", 50, "hospital_id"},
      {Who::admin, world().hospital, "lite", "active", 5, "hospital_id"},
      {Who::individual, world().individual, "lite", "inactive", 1, "individual_id"},
      {Who::admin, world().individual, "pro", "active", 2, "individual_id"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.plan_type) + " for " + c.id);
    const auto plan = api().ok(api().select_plan(c.who, c.plan_type, c.id));
    EXPECT_EQ(text(plan.at(c.owner_field)), c.id);
    EXPECT_EQ(plan.at("plan_type"), c.plan_type);
    EXPECT_EQ(plan.at("status"), c.status);
    EXPECT_EQ(plan.at("max_agents"), c.max_agents);
  }
  // The hospital's own choice of pro never takes its active lite away: it waits, pending.
  const auto chosen = api().ok(api().select_plan(Who::hospital, "pro", world().hospital));
  EXPECT_EQ(chosen.at("plan_type"), "lite");
  EXPECT_EQ(chosen.at("status"), "active");
  EXPECT_EQ(chosen.at("pending_plan_type"), "pro");
}

TEST_P(E2eApi, ChangingThePlanTypeResetsServicesToDefaults) {
  api().prepare(Setup::plans_active);
  api().ok(api().select_services(Who::hospital, world().hospital, {"medication"}));
  const auto pro = api().ok(api().select_plan(Who::admin, "pro", world().hospital));
  EXPECT_EQ(strings(pro.at("selected_services")), kLiteDefaults);
}

// A pro plan's defaults are stored in the catalog's default order, and a selection lists
// services in the plan's order: the same services in another order are no change.
TEST_P(E2eApi, SelectingAProPlansDefaultsAgainRecordsNoChange) {
  api().enroll_everyone();
  api().ok(api().select_plan(Who::admin, "pro", world().hospital));
  const auto rows = [&] { return plan_history(api().server, "hospital_id", world().hospital); };
  ASSERT_EQ(rows().size(), 1u);
  const auto plan = api().ok(api().select_services(Who::hospital, world().hospital, {}));
  EXPECT_THAT(strings(plan.at("selected_services")),
              UnorderedElementsAre("privacy", "human_escalation", "checklist"));
  EXPECT_EQ(rows().size(), 1u);
  api().ok(api().select_services(Who::hospital, world().hospital, {"summary"}));
  EXPECT_EQ(rows().size(), 2u);
}

TEST_P(E2eApi, AdminCanOnlyChooseForEntitiesThatExist) {
  const auto before = api().select_plan(Who::admin, "lite", world().hospital);
  EXPECT_EQ(before.status, 404) << before.body;
  api().get(Who::hospital, "/billing/plan");  // the hospital's first request enrolls it
  EXPECT_EQ(api().select_plan(Who::admin, "lite", world().hospital).status, 200);
}

// ---------------------------------------------------------------------------------------------
// plan_update_history

std::string joined(const std::vector<std::string>& services) {
  std::string out;
  for (const auto& s : services) out += (out.empty() ? "" : ",") + s;
  return out;
}

TEST_P(E2eApi, EveryChangeAppendsOneHistoryRow) {
  auto& s = api();
  s.enroll_everyone();
  const auto history = [&] { return plan_history(s.server, "hospital_id", world().hospital); };
  const auto rows_after = [&](const HttpResponse& response, int status) {
    EXPECT_EQ(response.status, status) << response.body;
    return history().size();
  };
  ASSERT_EQ(history().size(), 0u);
  EXPECT_EQ(rows_after(s.select_plan(Who::admin, "lite", world().hospital), 200), 1u);
  EXPECT_EQ(rows_after(s.select_services(Who::hospital, world().hospital, {"medication"}), 200),
            2u);
  // The same selection again, said differently: nothing changes, nothing is recorded.
  EXPECT_EQ(rows_after(
                s.select_services(Who::hospital, world().hospital, {"medication", "privacy"}), 200),
            2u);
  EXPECT_EQ(rows_after(s.select_plan(Who::admin, "lite", world().hospital), 200), 2u);
  // Refused requests change nothing.
  EXPECT_EQ(
      rows_after(s.select_services(Who::hospital, world().hospital, {"medication", "nutrition"}),
                 400),
      2u);
  EXPECT_EQ(rows_after(s.select_plan(Who::hospital, "hobby", world().hospital), 400), 2u);
  // The hospital's own choice of the plan it has active changes nothing; of another plan, it
  // waits as pending (the active plan's type, status and services stay: no row).
  EXPECT_EQ(rows_after(s.select_plan(Who::hospital, "lite", world().hospital), 200), 2u);
  EXPECT_EQ(rows_after(s.select_plan(Who::hospital, "pro", world().hospital), 200), 2u);

  const auto rows = history();
  ASSERT_EQ(rows.size(), 2u);
  const std::string defaults = joined(kLiteDefaults);
  EXPECT_EQ(rows[0].from_plan_type, "");
  EXPECT_EQ(rows[0].to_plan_type, "lite");
  EXPECT_EQ(rows[0].to_status, "active");
  EXPECT_EQ(rows[0].to_services, defaults);
  EXPECT_EQ(rows[0].changed_by, world().admin_subject);
  EXPECT_EQ(rows[1].from_services, defaults);
  EXPECT_EQ(rows[1].to_services, defaults + ",medication");
  EXPECT_EQ(rows[1].changed_by, "user-" + world().hospital);
  for (const auto& row : rows) {
    EXPECT_FALSE(row.plan_id.empty());
    EXPECT_FALSE(row.reason.empty());
  }

  EXPECT_EQ(rows_after(s.select_plan(Who::individual, "pro", world().individual), 200), 2u);
  const auto individual_rows = plan_history(s.server, "individual_id", world().individual);
  ASSERT_EQ(individual_rows.size(), 1u);
  EXPECT_EQ(individual_rows[0].to_plan_type, "pro");
  EXPECT_EQ(individual_rows[0].to_status, "inactive");
  EXPECT_EQ(individual_rows[0].to_services, "primary");
}

// Runs `request(i, client)` for every i below `count`, on as many threads at once, each with a
// connection of its own. A request that got no answer comes back with status 0.
std::vector<HttpResponse> concurrently(
    unsigned short port, int count, const std::function<HttpResponse(int, HttpClient&)>& request) {
  std::vector<HttpResponse> responses(count);
  std::latch start(count);
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i)
    threads.emplace_back([&, i] {
      HttpClient client(port);
      start.arrive_and_wait();
      try {
        responses[i] = request(i, client);
      } catch (const std::exception& e) {
        responses[i].body = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return responses;
}

// Each history row starts where the one before ended: no change was lost or recorded twice.
void expect_chain(const std::vector<HistoryRow>& rows, std::string HistoryRow::*from,
                  std::string HistoryRow::*to) {
  for (std::size_t i = 1; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(rows[i].*from, rows[i - 1].*to);
    EXPECT_EQ(rows[i].plan_id, rows[0].plan_id);
  }
}

constexpr int kThreads = 20;

TEST_P(E2eApi, ConcurrentServiceSelectionsLoseNoUpdate) {
  auto& s = api();
  s.prepare(Setup::plans_active);
  const std::vector<std::string> choices[] = {{"medication"}, {"nutrition"}};
  const std::string expected[] = {joined(kLiteDefaults) + ",medication",
                                  joined(kLiteDefaults) + ",nutrition"};
  const Headers headers = s.headers(Who::hospital, Csrf::valid);
  const auto responses = concurrently(s.server.port(), kThreads, [&](int i, HttpClient& client) {
    return client.post("/billing/services/select", services_body(world().hospital, choices[i % 2]),
                       headers);
  });
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
    EXPECT_EQ(joined(strings(responses[i].json().at("selected_services"))), expected[i % 2]);
  }
  const auto current = s.get(Who::hospital, "/billing/plan/current");
  const auto final_state = joined(strings(current.json().at("selected_services")));
  EXPECT_THAT(final_state, testing::AnyOfArray(expected));

  const auto rows = plan_history(s.server, "hospital_id", world().hospital);
  ASSERT_GE(rows.size(), 2u);  // the admin's choice of plan, then at least one selection
  ASSERT_LE(rows.size(), 1u + kThreads);
  EXPECT_EQ(rows.front().to_services, joined(kLiteDefaults));
  expect_chain(rows, &HistoryRow::from_services, &HistoryRow::to_services);
  for (std::size_t i = 1; i < rows.size(); ++i)
    EXPECT_NE(rows[i].from_services, rows[i].to_services) << i;  // only real changes
  EXPECT_EQ(rows.back().to_services, final_state);
}

TEST_P(E2eApi, ConcurrentPlanSelectionsCreateOnePlan) {
  auto& s = api();
  s.enroll_everyone();
  const char* choices[] = {"lite", "pro"};
  const Headers headers = s.headers(Who::admin, Csrf::valid);
  const auto responses = concurrently(s.server.port(), kThreads, [&](int i, HttpClient& client) {
    return client.post("/billing/plan/select", plan_body(choices[i % 2], world().hospital),
                       headers);
  });
  std::set<std::string> plan_ids;
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
    EXPECT_EQ(responses[i].json().at("plan_type"), choices[i % 2]);
    plan_ids.insert(text(responses[i].json().at("id")));
  }
  EXPECT_EQ(plan_ids.size(), 1u) << "one hospital, one plan";

  const auto rows = plan_history(s.server, "hospital_id", world().hospital);
  ASSERT_GE(rows.size(), 1u);
  ASSERT_LE(rows.size(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(rows.front().from_plan_type, "");  // created once, changed afterwards
  expect_chain(rows, &HistoryRow::from_plan_type, &HistoryRow::to_plan_type);
  const auto current = s.get(Who::admin, "/billing/plan/current?entity_id={hospital}");
  EXPECT_EQ(text(current.json().at("plan_type")), rows.back().to_plan_type);
}

TEST_P(E2eApi, ConcurrentFirstRequestsEnrollOnce) {
  auto& s = api();
  const std::string tokens[] = {s.token(Who::hospital), s.token(Who::assistant)};
  const char* targets[] = {"/billing/plan", "/billing/services"};
  const auto responses = concurrently(s.server.port(), kThreads, [&](int i, HttpClient& client) {
    return client.get(targets[i % 2], bearer(tokens[i % 2]));
  });
  for (int i = 0; i < kThreads; ++i)
    EXPECT_EQ(responses[i].status, 200) << i << ": " << responses[i].body;
  EXPECT_EQ(s.select_plan(Who::admin, "lite", world().hospital).status, 200);
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eApi, testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

// ---------------------------------------------------------------------------------------------
// The permission matrix, cell by cell

struct MatrixCase {
  const char* name;
  Who caller;
  const char* method;
  const char* target;
  const char* body;
  int status;
  const char* detail;           // for refusals
  const char* field = nullptr;  // for successes: a field of the body and its value
  const char* value = nullptr;
};
void PrintTo(const MatrixCase& c, std::ostream* os) {
  *os << c.name;
}

constexpr const char* kSelectServices = R"({"hospital_id":"{hospital}","services":["medication"]})";
constexpr const char* kNotEnough = "Not enough permissions";
constexpr const char* kOnlyHospitals = "Only hospital administrators can select services";

const MatrixCase kMatrix[] = {
    {"plan_admin", Who::admin, "GET", "/billing/plan", "", 200, "", "user_role", "admin"},
    {"plan_hospital", Who::hospital, "GET", "/billing/plan", "", 200, "", "user_role", "hospital"},
    {"plan_individual", Who::individual, "GET", "/billing/plan", "", 200, "", "user_role",
     "individual"},
    {"plan_assistant", Who::assistant, "GET", "/billing/plan", "", 403, kNotEnough},
    {"services_admin", Who::admin, "GET", "/billing/services", "", 200, ""},
    {"services_hospital", Who::hospital, "GET", "/billing/services", "", 200, "", "plan_type",
     "lite"},
    {"services_individual", Who::individual, "GET", "/billing/services", "", 200, "", "plan_type",
     "lite"},
    {"services_assistant", Who::assistant, "GET", "/billing/services", "", 200, "", "status",
     "active"},
    {"select_services_admin", Who::admin, "POST", "/billing/services/select", kSelectServices, 200,
     "", "hospital_id", "{hospital}"},
    {"select_services_hospital_own", Who::hospital, "POST", "/billing/services/select",
     kSelectServices, 200, "", "hospital_id", "{hospital}"},
    {"select_services_individual", Who::individual, "POST", "/billing/services/select",
     kSelectServices, 403, kOnlyHospitals},
    {"select_services_assistant", Who::assistant, "POST", "/billing/services/select",
     kSelectServices, 403, kOnlyHospitals},
    {"select_services_other_hospital", Who::other_hospital, "POST", "/billing/services/select",
     kSelectServices, 403, "Not allowed to manage this hospital"},
    {"current_admin_hospital", Who::admin, "GET", "/billing/plan/current?entity_id={hospital}", "",
     200, "", "hospital_id", "{hospital}"},
    {"current_admin_individual", Who::admin, "GET", "/billing/plan/current?entity_id={individual}",
     "", 200, "", "individual_id", "{individual}"},
    {"current_hospital_own", Who::hospital, "GET", "/billing/plan/current", "", 200, "",
     "hospital_id", "{hospital}"},
    {"current_individual_own", Who::individual, "GET", "/billing/plan/current", "", 200, "",
     "individual_id", "{individual}"},
    {"current_assistant", Who::assistant, "GET", "/billing/plan/current", "", 403, kNotEnough},
    // Only admins may name another entity; naming one's own is fine.
    {"current_hospital_names_other", Who::hospital, "GET",
     "/billing/plan/current?entity_id={other_hospital}", "", 403,
     "Not allowed to manage this hospital"},
    {"current_hospital_names_own", Who::hospital, "GET",
     "/billing/plan/current?entity_id={hospital}", "", 200, "", "hospital_id", "{hospital}"},
    {"select_plan_admin", Who::admin, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{hospital}"})", 200, "", "status", "active"},
    // The hospital's active lite plan stays; pro waits as pending until it is paid for.
    {"select_plan_hospital_own", Who::hospital, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{hospital}"})", 200, "", "pending_plan_type", "pro"},
    {"select_plan_individual_own", Who::individual, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{individual}"})", 200, "", "individual_id", "{individual}"},
    {"select_plan_assistant", Who::assistant, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{hospital}"})", 403, kNotEnough},
    {"select_plan_hospital_other", Who::hospital, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{other_hospital}"})", 403, "Not allowed to manage this hospital"},
    {"select_plan_individual_other", Who::individual, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{other_individual}"})", 403,
     "Not allowed to manage this individual"},
    {"select_plan_hospital_names_individual", Who::hospital, "POST", "/billing/plan/select",
     R"({"plan_type":"pro","id":"{individual}"})", 403, "Not allowed to manage this hospital"},
};

class E2ePermissions : public ApiTest<std::tuple<std::string, MatrixCase>> {};

TEST_P(E2ePermissions, Cell) {
  const auto& c = std::get<1>(GetParam());
  api().prepare(Setup::plans_active);
  const auto response = std::string_view(c.method) == "GET"
                            ? api().get(c.caller, c.target)
                            : api().post(c.caller, c.target, c.body);
  ASSERT_EQ(response.status, c.status) << response.body;
  if (c.status != 200) {
    EXPECT_EQ(response.detail_text(), c.detail) << response.body;
  } else if (c.field) {
    EXPECT_EQ(text(response.json().at(c.field)), world().fill(c.value)) << response.body;
  }
}

INSTANTIATE_TEST_SUITE_P(E2e, E2ePermissions,
                         testing::Combine(testing::ValuesIn(backends()),
                                          testing::ValuesIn(kMatrix)),
                         case_name<MatrixCase>);

// ---------------------------------------------------------------------------------------------
// Every error the API answers, with its exact detail

enum class Match { exact, contains, validation_type };

struct ErrorCase {
  const char* name;
  Setup setup;
  Who caller;
  const char* method;
  const char* target;
  const char* body;
  int status;
  const char* detail;
  Match match = Match::exact;
  Csrf csrf = Csrf::valid;
  const char* authorization = nullptr;  // a raw Authorization header instead of the caller's
};
void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

constexpr const char* kPlanSelect = "/billing/plan/select";
constexpr const char* kServicesSelect = "/billing/services/select";
constexpr const char* kLiteForHospital = R"({"plan_type":"lite","id":"{hospital}"})";
constexpr const char* kNoServices = R"({"hospital_id":"{hospital}","services":[]})";
constexpr const char* kNotAuthenticated = "Not authenticated";
constexpr const char* kInvalidCsrf = "Invalid CSRF token";

const ErrorCase kErrors[] = {
    // 400 Invalid plan type: valid PlanType values the catalog does not offer.
    {"hobby_by_admin", Setup::enrolled, Who::admin, "POST", kPlanSelect,
     R"({"plan_type":"hobby","id":"{hospital}"})", 400, "Invalid plan type"},
    {"basic_by_hospital", Setup::enrolled, Who::hospital, "POST", kPlanSelect,
     R"({"plan_type":"basic","id":"{hospital}"})", 400, "Invalid plan type"},
    {"hobby_by_individual", Setup::enrolled, Who::individual, "POST", kPlanSelect,
     R"({"plan_type":"hobby","id":"{individual}"})", 400, "Invalid plan type"},
    // 401 Not authenticated: no credentials, or not a bearer token.
    {"no_authorization_plan", Setup::fresh, Who::anonymous, "GET", "/billing/plan", "", 401,
     kNotAuthenticated},
    {"no_authorization_services", Setup::fresh, Who::anonymous, "GET", "/billing/services", "", 401,
     kNotAuthenticated},
    {"no_authorization_current", Setup::fresh, Who::anonymous, "GET", "/billing/plan/current", "",
     401, kNotAuthenticated},
    {"no_authorization_csrf", Setup::fresh, Who::anonymous, "GET", "/csrf-token", "", 401,
     kNotAuthenticated},
    {"no_authorization_select_plan", Setup::fresh, Who::anonymous, "POST", kPlanSelect,
     kLiteForHospital, 401, kNotAuthenticated},
    {"no_authorization_select_services", Setup::fresh, Who::anonymous, "POST", kServicesSelect,
     kNoServices, 401, kNotAuthenticated},
    {"basic_scheme", Setup::fresh, Who::admin, "GET", "/billing/plan", "", 401, kNotAuthenticated,
     Match::exact, Csrf::none, "Basic dXNlcjpwYXNzd29yZA=="},
    {"bearer_without_token", Setup::fresh, Who::admin, "GET", "/billing/plan", "", 401,
     kNotAuthenticated, Match::exact, Csrf::none, "Bearer "},
    {"token_without_scheme", Setup::fresh, Who::admin, "GET", "/billing/plan", "", 401,
     kNotAuthenticated, Match::exact, Csrf::none, "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
    // 403: roles that may not select services.
    {"individual_selects_services", Setup::plans_active, Who::individual, "POST", kServicesSelect,
     kNoServices, 403, kOnlyHospitals},
    {"assistant_selects_services", Setup::plans_active, Who::assistant, "POST", kServicesSelect,
     kNoServices, 403, kOnlyHospitals},
    // 404 / 409: the plan services are chosen for.
    {"services_without_plan", Setup::enrolled, Who::hospital, "POST", kServicesSelect, kNoServices,
     404, "Hospital plan not found"},
    {"services_without_plan_by_admin", Setup::enrolled, Who::admin, "POST", kServicesSelect,
     kNoServices, 404, "Hospital plan not found"},
    {"services_on_inactive_plan", Setup::hospital_plan_inactive, Who::hospital, "POST",
     kServicesSelect, kNoServices, 409, "inactive", Match::contains},
    // 400 / 422: services the plan does not allow.
    {"lite_two_optional_services", Setup::plans_active, Who::hospital, "POST", kServicesSelect,
     R"({"hospital_id":"{hospital}","services":["medication","nutrition"]})", 400,
     "one optional service", Match::contains},
    {"summary_not_on_lite", Setup::plans_active, Who::hospital, "POST", kServicesSelect,
     R"({"hospital_id":"{hospital}","services":["summary"]})", 400, "summary", Match::contains},
    {"checkpoint_not_on_lite", Setup::plans_active, Who::admin, "POST", kServicesSelect,
     R"({"hospital_id":"{hospital}","services":["privacy","checkpoint"]})", 400, "checkpoint",
     Match::contains},
    {"unknown_service", Setup::plans_active, Who::hospital, "POST", kServicesSelect,
     R"({"hospital_id":"{hospital}","services":["teleportation"]})", 422, "enum",
     Match::validation_type},
    {"unknown_billing_cycle", Setup::plans_active, Who::hospital, "POST", kPlanSelect,
     R"({"plan_type":"pro","id":"{hospital}","billing_cycle":"weekly"})", 422, "enum",
     Match::validation_type},
    // 403 Invalid CSRF token, on both state-changing endpoints.
    {"csrf_missing_plan", Setup::enrolled, Who::hospital, "POST", kPlanSelect, kLiteForHospital,
     403, kInvalidCsrf, Match::exact, Csrf::none},
    {"csrf_garbage_plan", Setup::enrolled, Who::hospital, "POST", kPlanSelect, kLiteForHospital,
     403, kInvalidCsrf, Match::exact, Csrf::garbage},
    {"csrf_of_other_user_plan", Setup::enrolled, Who::hospital, "POST", kPlanSelect,
     kLiteForHospital, 403, kInvalidCsrf, Match::exact, Csrf::other_user},
    {"csrf_expired_plan", Setup::enrolled, Who::hospital, "POST", kPlanSelect, kLiteForHospital,
     403, kInvalidCsrf, Match::exact, Csrf::expired},
    {"csrf_wrong_secret_plan", Setup::enrolled, Who::hospital, "POST", kPlanSelect,
     kLiteForHospital, 403, kInvalidCsrf, Match::exact, Csrf::wrong_secret},
    {"csrf_missing_services", Setup::plans_active, Who::hospital, "POST", kServicesSelect,
     kNoServices, 403, kInvalidCsrf, Match::exact, Csrf::none},
    {"csrf_garbage_services", Setup::plans_active, Who::admin, "POST", kServicesSelect, kNoServices,
     403, kInvalidCsrf, Match::exact, Csrf::garbage},
    {"csrf_of_other_user_services", Setup::plans_active, Who::hospital, "POST", kServicesSelect,
     kNoServices, 403, kInvalidCsrf, Match::exact, Csrf::other_user},
    // 404: an admin naming what does not exist.
    {"admin_services_unknown_hospital", Setup::enrolled, Who::admin, "POST", kServicesSelect,
     R"({"hospital_id":"{missing}","services":[]})", 404, "Hospital not found"},
    {"admin_plan_unknown_hospital", Setup::enrolled, Who::admin, "POST", kPlanSelect,
     R"({"plan_type":"lite","id":"{missing}","role":"hospital"})", 404, "Hospital not found"},
    {"admin_plan_unknown_individual", Setup::enrolled, Who::admin, "POST", kPlanSelect,
     R"({"plan_type":"lite","id":"{missing}","role":"individual"})", 404, "Individual not found"},
    {"admin_plan_hospital_as_individual", Setup::enrolled, Who::admin, "POST", kPlanSelect,
     R"({"plan_type":"lite","id":"{hospital}","role":"individual"})", 404, "Individual not found"},
    {"admin_plan_unknown_entity", Setup::enrolled, Who::admin, "POST", kPlanSelect,
     R"({"plan_type":"lite","id":"{missing}"})", 404, "not found", Match::contains},
    {"admin_current_unknown_entity", Setup::enrolled, Who::admin, "GET",
     "/billing/plan/current?entity_id={missing}", "", 404, "not found", Match::contains},
    {"admin_catalog_unknown_entity", Setup::enrolled, Who::admin, "GET",
     "/billing/plan?entity_id={missing}", "", 404, "not found", Match::contains},
    {"admin_services_list_unknown_entity", Setup::enrolled, Who::admin, "GET",
     "/billing/services?entity_id={missing}", "", 404, "not found", Match::contains},
    // GET /billing/plan/current
    {"admin_current_without_entity_id", Setup::enrolled, Who::admin, "GET", "/billing/plan/current",
     "", 422, "missing", Match::validation_type},
    {"admin_current_nul_in_entity_id", Setup::plans_active, Who::admin, "GET",
     "/billing/plan/current?entity_id={hospital}%00x", "", 422, "string_pattern_mismatch",
     Match::validation_type},
    // Percent escapes spell bytes that are not UTF-8 (PostgreSQL refused them with a 500), or an
    // id too long: 422 naming the parameter, on every route that takes an id from the URL.
    {"admin_current_invalid_utf8_entity_id", Setup::plans_active, Who::admin, "GET",
     "/billing/plan/current?entity_id=%ff", "", 422, "string_pattern_mismatch",
     Match::validation_type},
    {"admin_catalog_overlong_utf8_entity_id", Setup::plans_active, Who::admin, "GET",
     "/billing/plan?entity_id=%c0%af", "", 422, "string_pattern_mismatch", Match::validation_type},
    {"hospital_subscription_invalid_utf8_id", Setup::plans_active, Who::hospital, "GET",
     "/stripe/subscription/a%ff", "", 422, "string_pattern_mismatch", Match::validation_type},
    {"admin_subscription_id_too_long", Setup::plans_active, Who::admin, "GET",
     "/stripe/subscription/"
     "sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
     "ssssssssssssssssssssssssssssssssssssssss",
     "", 422, "string_pattern_mismatch", Match::validation_type},
    {"admin_invoices_invalid_utf8_customer", Setup::plans_active, Who::admin, "GET",
     "/stripe/customer/%ff%fe/invoices", "", 422, "string_pattern_mismatch",
     Match::validation_type},
    {"admin_customers_invalid_utf8_cursor", Setup::plans_active, Who::admin, "GET",
     "/stripe/admin/customers?starting_after=%ff", "", 422, "string_pattern_mismatch",
     Match::validation_type},
    {"admin_current_bad_role_query", Setup::plans_active, Who::admin, "GET",
     "/billing/plan/current?entity_id={hospital}&role=doctor", "", 422, "enum",
     Match::validation_type},
    {"hospital_current_without_plan", Setup::enrolled, Who::hospital, "GET",
     "/billing/plan/current", "", 404, "Hospital plan not found"},
    {"individual_current_without_plan", Setup::enrolled, Who::individual, "GET",
     "/billing/plan/current", "", 404, "Individual plan not found"},
};

class E2eErrors : public ApiTest<std::tuple<std::string, ErrorCase>> {};

TEST_P(E2eErrors, Detail) {
  const auto& c = std::get<1>(GetParam());
  auto& s = api();
  s.prepare(c.setup);
  Headers headers = s.headers(c.caller, std::string_view(c.method) == "POST" ? c.csrf : Csrf::none);
  if (c.authorization) headers = {{"Authorization", c.authorization}};
  const auto response = s.client.send({.method = c.method,
                                       .target = world().fill(c.target),
                                       .body = world().fill(c.body),
                                       .headers = headers});
  ASSERT_EQ(response.status, c.status) << response.body;
  switch (c.match) {
    case Match::exact:
      EXPECT_EQ(response.detail_text(), c.detail) << response.body;
      break;
    case Match::contains:
      EXPECT_THAT(response.detail_text(), HasSubstr(c.detail)) << response.body;
      break;
    case Match::validation_type: {
      const auto detail = response.detail();
      ASSERT_TRUE(detail.is_array() && !detail.as_array().empty()) << response.body;
      EXPECT_EQ(detail.at(0).at("type"), c.detail) << response.body;
      break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eErrors,
                         testing::Combine(testing::ValuesIn(backends()),
                                          testing::ValuesIn(kErrors)),
                         case_name<ErrorCase>);

// ---------------------------------------------------------------------------------------------
// 422: bodies that are not what the endpoint takes, in FastAPI's shape

struct FieldError {
  const char* type;
  const char* loc;  // JSON text of the whole loc, or nullptr: only its first element, "body"
};

// An id one byte over the 128 the API accepts.
const std::string kTooLongIdBody =
    R"({"plan_type":"lite","id":")" + std::string(129, 'h') + R"("})";

struct ValidationCase {
  const char* name;
  const char* target;
  const char* body;
  std::vector<FieldError> errors;
};
void PrintTo(const ValidationCase& c, std::ostream* os) {
  *os << c.name;
}

const ValidationCase kValidation[] = {
    {"plan_malformed_json", kPlanSelect, R"({"plan_type": "lite",)", {{"json_invalid", nullptr}}},
    {"plan_form_encoded", kPlanSelect, "plan_type=lite&id=x", {{"json_invalid", nullptr}}},
    {"plan_trailing_garbage",
     kPlanSelect,
     R"({"plan_type":"lite","id":"x"} x)",
     {{"json_invalid", nullptr}}},
    {"plan_type_number",
     kPlanSelect,
     R"({"plan_type":5,"id":"{hospital}"})",
     {{"enum", R"(["body","plan_type"])"}}},
    {"plan_type_unknown",
     kPlanSelect,
     R"({"plan_type":"gold","id":"{hospital}"})",
     {{"enum", R"(["body","plan_type"])"}}},
    {"plan_type_null",
     kPlanSelect,
     R"({"plan_type":null,"id":"{hospital}"})",
     {{"enum", R"(["body","plan_type"])"}}},
    {"plan_id_number",
     kPlanSelect,
     R"({"plan_type":"lite","id":5})",
     {{"string_type", R"(["body","id"])"}}},
    {"plan_id_empty",
     kPlanSelect,
     R"({"plan_type":"lite","id":""})",
     {{"string_too_short", R"(["body","id"])"}}},
    {"plan_id_control_character",
     kPlanSelect,
     R"({"plan_type":"lite","id":"h\u0000x"})",
     {{"string_pattern_mismatch", R"(["body","id"])"}}},
    {"plan_id_too_long",
     kPlanSelect,
     kTooLongIdBody.c_str(),
     {{"string_too_long", R"(["body","id"])"}}},
    {"plan_missing_fields",
     kPlanSelect,
     "{}",
     {{"missing", R"(["body","plan_type"])"}, {"missing", R"(["body","id"])"}}},
    {"plan_missing_id", kPlanSelect, R"({"plan_type":"lite"})", {{"missing", R"(["body","id"])"}}},
    {"plan_wrong_types_everywhere",
     kPlanSelect,
     R"({"plan_type":5,"id":[]})",
     {{"enum", R"(["body","plan_type"])"}, {"string_type", R"(["body","id"])"}}},
    {"plan_role_unknown",
     kPlanSelect,
     R"({"plan_type":"lite","id":"{hospital}","role":"doctor"})",
     {{"enum", R"(["body","role"])"}}},
    {"plan_body_array",
     kPlanSelect,
     R"([{"plan_type":"lite","id":"x"}])",
     {{"model_attributes_type", R"(["body"])"}}},
    {"plan_body_string", kPlanSelect, R"("lite")", {{"model_attributes_type", R"(["body"])"}}},
    {"plan_body_null", kPlanSelect, "null", {{"model_attributes_type", R"(["body"])"}}},
    {"plan_empty_body", kPlanSelect, "", {{"missing", R"(["body"])"}}},
    {"plan_blank_body", kPlanSelect, " \r\n\t", {{"missing", R"(["body"])"}}},
    {"services_string",
     kServicesSelect,
     R"({"hospital_id":"{hospital}","services":"x"})",
     {{"list_type", R"(["body","services"])"}}},
    {"services_object",
     kServicesSelect,
     R"({"hospital_id":"{hospital}","services":{"a":1}})",
     {{"list_type", R"(["body","services"])"}}},
    {"services_number_item",
     kServicesSelect,
     R"({"hospital_id":"{hospital}","services":[5]})",
     {{"enum", R"(["body","services",0])"}}},
    {"services_unknown_items",
     kServicesSelect,
     R"({"hospital_id":"{hospital}","services":["privacy","teleport","x"]})",
     {{"enum", R"(["body","services",1])"}, {"enum", R"(["body","services",2])"}}},
    {"services_missing_fields",
     kServicesSelect,
     "{}",
     {{"missing", R"(["body","hospital_id"])"}, {"missing", R"(["body","services"])"}}},
    {"services_hospital_id_number",
     kServicesSelect,
     R"({"hospital_id":7,"services":[]})",
     {{"string_type", R"(["body","hospital_id"])"}}},
    {"services_malformed_json", kServicesSelect, R"({"hospital_id":)", {{"json_invalid", nullptr}}},
    {"services_body_array",
     kServicesSelect,
     R"(["privacy"])",
     {{"model_attributes_type", R"(["body"])"}}},
    {"services_empty_body", kServicesSelect, "", {{"missing", R"(["body"])"}}},
};

class E2eValidation : public ApiTest<std::tuple<std::string, ValidationCase>> {};

TEST_P(E2eValidation, FastApiShape) {
  const auto& c = std::get<1>(GetParam());
  const auto response = api().post(Who::admin, c.target, c.body);
  ASSERT_EQ(response.status, 422) << response.body;
  const auto detail = response.detail();
  ASSERT_TRUE(detail.is_array()) << response.body;
  ASSERT_EQ(detail.as_array().size(), c.errors.size()) << response.body;
  for (std::size_t i = 0; i < c.errors.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& error = detail.at(i).as_object();
    EXPECT_EQ(error.at("type"), c.errors[i].type) << response.body;
    EXPECT_FALSE(error.at("msg").as_string().empty());
    const auto& loc = error.at("loc").as_array();
    if (c.errors[i].loc) {
      EXPECT_EQ(json::serialize(loc), c.errors[i].loc);
    } else {
      ASSERT_FALSE(loc.empty());
      EXPECT_EQ(loc.at(0), "body");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eValidation,
                         testing::Combine(testing::ValuesIn(backends()),
                                          testing::ValuesIn(kValidation)),
                         case_name<ValidationCase>);

// ---------------------------------------------------------------------------------------------
// 401: tokens the service must not trust

class E2eTokens : public ApiTest<std::tuple<std::string, BadToken>> {};

TEST_P(E2eTokens, AreRefused) {
  const auto token = bad_token(std::get<1>(GetParam()));
  for (const auto& target : {"/billing/plan", "/billing/services", "/csrf-token"}) {
    const auto response = api().client.get(target, bearer(token));
    EXPECT_EQ(response.status, 401) << target << ": " << response.body;
    EXPECT_FALSE(response.detail_text().empty()) << response.body;
  }
  // Authentication comes before the CSRF check: a forged token is 401, not 403.
  Headers headers = bearer(token);
  headers.emplace_back("X-CSRF-Token", "anything");
  const auto response =
      api().client.post(kPlanSelect, plan_body("lite", world().hospital), headers);
  EXPECT_EQ(response.status, 401) << response.body;
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eTokens,
                         testing::Combine(testing::ValuesIn(backends()),
                                          testing::ValuesIn(kAllBadTokens)),
                         [](const auto& test) {
                           return std::get<0>(test.param) + "_" +
                                  std::string(bad_token_name(std::get<1>(test.param)));
                         });

}  // namespace
}  // namespace billing::e2e
