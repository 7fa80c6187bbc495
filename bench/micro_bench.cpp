// Micro benchmarks of the work done on the request path (see bench/README.md):
// JWT and CSRF verification, the JSON writer, the service-selection rule and the catalog parser.
//
//   ninja -C build billing_bench && build/billing_bench
//
// Each benchmark works on fixed inputs made once, outside the timed loop, and checks its
// result once before timing so that a broken input cannot pass as a fast benchmark.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "auth/csrf.hpp"
#include "auth/jwt.hpp"
#include "http/access_log.hpp"
#include "http/request_id.hpp"
#include "http/route_metrics.hpp"
#include "kit/api_error.hpp"
#include "kit/json.hpp"
#include "kit/run_blocking.hpp"
#include "limits/plan_rate_limit.hpp"
#include "plans/catalog.hpp"
#include "plans/views.hpp"
#include "services/selection.hpp"
#include "storage/sqlite/sqlite_db.hpp"

namespace {

using namespace billing;
using namespace std::chrono_literals;

// A fixed instant, so that tokens and timestamps are the same in every run.
const TimePoint kNow{std::chrono::seconds(1'750'000'000)};
constexpr std::string_view kJwtSecret = "bench-jwt-secret-0123456789abcdef0123456789abcdef";
constexpr std::string_view kCsrfSecret = "bench-csrf-secret-0123456789abcdef0123456789abcdef";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string& plans_text() {
  static const std::string text = read_file(BILLING_SOURCE_DIR "/config/plans.json");
  return text;
}

const Catalog& catalog() {
  static const Catalog c = Catalog::parse(plans_text());
  return c;
}

const PlanOffer& offer(EntityKind role, PlanType type) {
  const PlanOffer* o = catalog().find(role, type);
  if (!o) throw std::runtime_error("config/plans.json has no such offer");
  return *o;
}

// A plan as GET /billing/plan shows it: a hospital on Lite with Stripe ids set.
Plan sample_plan() {
  Plan plan;
  plan.id = "6f1c2a9e-4b7d-4e0a-9c51-2d8f3b6a7e10";
  plan.owner = {EntityKind::hospital, "bench-hospital-1"};
  plan.plan_type = PlanType::lite;
  plan.status = PlanStatus::active;
  plan.max_agents = 5;
  plan.selected_services = {ServiceType::checklist, ServiceType::medication, ServiceType::privacy,
                            ServiceType::human_escalation};
  plan.stripe_customer_id = "cus_QZ3bench0000001";
  plan.stripe_subscription_id = "sub_1PbenchSubscription0001";
  plan.created_at = kNow - 24h;
  plan.updated_at = kNow;
  return plan;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("benchmark setup is wrong: ") + what);
}

// --- JWT --------------------------------------------------------------------------------------

void BM_JwtVerify(benchmark::State& state, Identity identity) {
  ManualClock clock(kNow);
  JwtCodec jwt{std::string(kJwtSecret), clock};
  const std::string token = jwt.sign(identity, kNow + 1h);
  require(jwt.verify(token).entity_id == identity.entity_id, "the signed token does not verify");
  for (auto _ : state) benchmark::DoNotOptimize(jwt.verify(token));
  state.SetLabel(std::to_string(token.size()) + " byte token");
}
BENCHMARK_CAPTURE(BM_JwtVerify, hospital,
                  Identity{"user-bench-hospital-1", Role::hospital, "bench-hospital-1", ""});
BENCHMARK_CAPTURE(BM_JwtVerify, admin, Identity{"user-admin", Role::admin, "", ""});

// The reject path (401 thrown as ApiError): a token signed with another secret.
void BM_JwtVerifyBadSignature(benchmark::State& state) {
  ManualClock clock(kNow);
  JwtCodec jwt{std::string(kJwtSecret), clock};
  const std::string token = JwtCodec{"another-secret", clock}.sign(
      {"user-bench-hospital-1", Role::hospital, "bench-hospital-1", ""}, kNow + 1h);
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(jwt.verify(token));
      state.SkipWithError("a token with a bad signature was accepted");
      break;
    } catch (const ApiError& e) {
      benchmark::DoNotOptimize(e.status);
    }
  }
}
BENCHMARK(BM_JwtVerifyBadSignature);

void BM_JwtSign(benchmark::State& state) {
  ManualClock clock(kNow);
  JwtCodec jwt{std::string(kJwtSecret), clock};
  const Identity identity{"user-bench-hospital-1", Role::hospital, "bench-hospital-1", ""};
  for (auto _ : state) benchmark::DoNotOptimize(jwt.sign(identity, kNow + 1h));
}
BENCHMARK(BM_JwtSign);

// --- CSRF -------------------------------------------------------------------------------------

void BM_CsrfVerify(benchmark::State& state) {
  ManualClock clock(kNow);
  CsrfTokens csrf{std::string(kCsrfSecret), clock, std::chrono::seconds(1h)};
  const std::string token = csrf.issue("user-admin").token;
  require(!csrf.refusal(token, "user-admin"), "the issued CSRF token is not valid");
  for (auto _ : state) benchmark::DoNotOptimize(!csrf.refusal(token, "user-admin"));
}
BENCHMARK(BM_CsrfVerify);

void BM_CsrfVerifyWrongSubject(benchmark::State& state) {
  ManualClock clock(kNow);
  CsrfTokens csrf{std::string(kCsrfSecret), clock, std::chrono::seconds(1h)};
  const std::string token = csrf.issue("user-admin").token;
  require(csrf.refusal(token, "user-someone-else").has_value(),
          "a CSRF token passed for another subject");
  for (auto _ : state) benchmark::DoNotOptimize(csrf.refusal(token, "user-someone-else"));
}
BENCHMARK(BM_CsrfVerifyWrongSubject);

void BM_CsrfIssue(benchmark::State& state) {
  ManualClock clock(kNow);
  CsrfTokens csrf{std::string(kCsrfSecret), clock, std::chrono::seconds(1h)};
  for (auto _ : state) benchmark::DoNotOptimize(csrf.issue("user-admin"));
}
BENCHMARK(BM_CsrfIssue);

// --- JSON writer ------------------------------------------------------------------------------

// to_json on a value built once, counting the bytes written.
void write_json(benchmark::State& state, const boost::json::value& value) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = to_json(value);
    bytes += text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

// A plan object (what GET /billing/plan/current writes).
void BM_ToJsonPlan(benchmark::State& state) {
  write_json(state, plan_json(sample_plan(), catalog()));
}
BENCHMARK(BM_ToJsonPlan);

// One catalog offer (money as decimals, arrays of names).
void BM_ToJsonOffer(benchmark::State& state) {
  write_json(state, offer_json(offer(EntityKind::hospital, PlanType::pro)));
}
BENCHMARK(BM_ToJsonOffer);

// Every offer of the catalog in one array (what the service renders once at start).
void BM_ToJsonAllOffers(benchmark::State& state) {
  boost::json::array offers;
  for (const auto& o : catalog().offers()) offers.push_back(offer_json(o));
  write_json(state, offers);
}
BENCHMARK(BM_ToJsonAllOffers);

// plan_json + append_json: the per-request part of GET /billing/plan for a caller with a plan
// (building the Boost.JSON object, its timestamps, then writing it).
void BM_PlanJsonAndWrite(benchmark::State& state) {
  const Plan plan = sample_plan();
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string body;
    body.reserve(640);
    append_json(body, plan_json(plan, catalog()));
    bytes += body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_PlanJsonAndWrite);

// --- Catalog rules ----------------------------------------------------------------------------

void BM_ResolveServices(benchmark::State& state, EntityKind role, PlanType type,
                        std::vector<ServiceType> requested) {
  const PlanOffer& o = offer(role, type);
  require(!resolve_services(o, requested).empty(), "resolve_services chose nothing");
  for (auto _ : state) benchmark::DoNotOptimize(resolve_services(o, std::span(requested)));
}
BENCHMARK_CAPTURE(BM_ResolveServices, lite_one_optional, EntityKind::hospital, PlanType::lite,
                  std::vector{ServiceType::medication});
BENCHMARK_CAPTURE(BM_ResolveServices, pro_all, EntityKind::hospital, PlanType::pro,
                  std::vector{ServiceType::checkpoint, ServiceType::primary,
                              ServiceType::medication, ServiceType::nutrition,
                              ServiceType::summary});

// The 400 path: two optional services on Lite, which allows one.
void BM_ResolveServicesRejected(benchmark::State& state) {
  const PlanOffer& o = offer(EntityKind::hospital, PlanType::lite);
  const std::vector requested{ServiceType::medication, ServiceType::nutrition};
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(resolve_services(o, requested));
      state.SkipWithError("two optional services were accepted on Lite");
      break;
    } catch (const ApiError& e) {
      benchmark::DoNotOptimize(e.status);
    }
  }
}
BENCHMARK(BM_ResolveServicesRejected);

// --- Catalog parse ----------------------------------------------------------------------------

void BM_CatalogParse(benchmark::State& state) {
  const std::string& text = plans_text();
  require(!Catalog::parse(text).offers().empty(), "config/plans.json has no offers");
  for (auto _ : state) benchmark::DoNotOptimize(Catalog::parse(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_CatalogParse);

// --- The middleware chain's own steps ---------------------------------------------------------

// What the request id, access log and metrics steps add to every request: a GET by a hospital
// through all three, with no step answering.
struct ChainFixture {
  ManualClock clock{kNow};
  Router router;
  Request request{.method = Method::get, .path = "/billing/plan"};
  ChainFixture() {
    router.add({Method::get, "/billing/plan", Policy::read(RoleSet::all()),
                [](const Call&) -> boost::asio::awaitable<Response> { co_return Response{}; }});
  }
  Call call() {
    Call c{request, router.routes().front()};
    c.identity = Identity{"user", Role::hospital, "bench-hospital-1", ""};
    return c;
  }
};

void BM_RequestIdStep(benchmark::State& state) {
  ChainFixture f;
  const RequestIds step;
  for (auto _ : state) {
    Call call = f.call();
    Response response;
    step.before(call);
    step.after(call, response);
    benchmark::DoNotOptimize(response.headers.size());
  }
}
BENCHMARK(BM_RequestIdStep);

void BM_AccessLogLine(benchmark::State& state) {
  ChainFixture f;
  AccessLog log(f.clock, -1);  // formats and buffers as in service; writes nowhere
  Call call = f.call();
  call.request_id = new_request_id();
  Response response;
  for (auto _ : state) log.after(call, response);
}
BENCHMARK(BM_AccessLogLine);

void BM_RouteMetricsRecord(benchmark::State& state) {
  ChainFixture f;
  RouteMetrics metrics(f.router);
  Call call = f.call();
  Response response;
  for (auto _ : state) metrics.after(call, response);
}
BENCHMARK(BM_RouteMetricsRecord)->Threads(1)->Threads(2);

// The plan rate limit on its usual path (the owner's limit cached, the bucket in the process):
// ready, before and after for one hospital, from one thread and from two (one busy tenant whose
// requests land on both I/O threads). Limits far above the load, so that every call passes.
struct RateLimitFixture {
  std::string dir = [] {
    std::string pattern = "/tmp/billing-bench-XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp");
    return pattern;
  }();
  SqliteDb db{dir + "/billing.db"};
  Catalog unlimited = [] {
    auto json = boost::json::parse(plans_text());
    for (auto& plan : json.at("plans").as_array())
      plan.as_object()["rate_limit_per_minute"] = 60'000'000;
    return Catalog::parse(boost::json::serialize(json));
  }();
  RateLimitMetrics metrics;
  PlanRateLimit limit{db, unlimited, true, nullptr, metrics};
  ChainFixture chain;

  RateLimitFixture() {
    db.migrate();
    Call call = chain.call();
    run_blocking(limit.prepare(call));  // the limit, read once
    if (!limit.ready(chain.call())) throw std::runtime_error("the limit is not cached");
  }
  ~RateLimitFixture() { std::filesystem::remove_all(dir); }
};

void BM_PlanRateLimitStep(benchmark::State& state) {
  static RateLimitFixture* f = nullptr;
  if (state.thread_index() == 0) f = new RateLimitFixture;
  for (auto _ : state) {
    Call call = f->chain.call();
    Response response;
    if (!f->limit.ready(call) || f->limit.before(call)) state.SkipWithError("refused");
    f->limit.after(call, response);
    benchmark::DoNotOptimize(response.headers.size());
  }
  if (state.thread_index() == 0) {
    delete f;
    f = nullptr;
  }
}
BENCHMARK(BM_PlanRateLimitStep)->Threads(1)->Threads(2);

}  // namespace
