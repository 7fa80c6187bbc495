// The middleware chain on its own: the order steps run in, what stops it, how failures become
// responses, and what Pipeline::finish runs. No server: each call runs with run_blocking.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "http/access_log.hpp"
#include "http/chain.hpp"
#include "http/errors.hpp"
#include "http/request_id.hpp"
#include "http/route_metrics.hpp"
#include "kit/api_error.hpp"
#include "kit/clock.hpp"
#include "kit/run_blocking.hpp"

namespace billing::http_test {
namespace {

namespace json = boost::json;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::Not;

using Trace = std::vector<std::string>;
using Before = std::function<std::optional<Response>(Call&)>;

// Answers (or passes on) and observes.
struct Recorder {
  std::string name;
  Trace& trace;
  Before on_before = {};
  std::optional<Response> before(Call& call) {
    trace.push_back(name + ".before");
    return on_before ? on_before(call) : std::nullopt;
  }
  void after(const Call&, Response& response) {
    trace.push_back(name + ".after " + std::to_string(response.status));
    response.with_header("X-Seen-By", name);
  }
};

// Answers (or passes on) only.
struct Gate {
  Trace& trace;
  Before on_before = {};
  std::optional<Response> before(Call& call) {
    trace.push_back("gate.before");
    return on_before ? on_before(call) : std::nullopt;
  }
};

// Prepares calls that are not ready.
struct Preparer {
  Trace& trace;
  bool is_ready = false;
  std::function<void()> on_prepare = {};
  bool ready(const Call&) const {
    trace.push_back("prep.ready");
    return is_ready;
  }
  boost::asio::awaitable<void> prepare(Call&) {
    trace.push_back("prep.prepare");
    if (on_prepare) on_prepare();
    co_return;
  }
};

// Observes only.
struct Watcher {
  Trace& trace;
  void after(const Call&, Response& response) {
    trace.push_back("watch.after " + std::to_string(response.status));
  }
};

static_assert(AnsweringStep<Recorder> && ObservingStep<Recorder> && !PreparingStep<Recorder>);
static_assert(AnsweringStep<Gate> && !ObservingStep<Gate> && !PreparingStep<Gate>);
static_assert(PreparingStep<Preparer> && !AnsweringStep<Preparer> && !ObservingStep<Preparer>);
static_assert(ObservingStep<Watcher> && !AnsweringStep<Watcher> && !PreparingStep<Watcher>);
static_assert(Step<RequestIds> && Step<AccessLog> && Step<RouteMetrics>);

std::vector<std::pair<std::string, std::string>> headers_of(const Response& response) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : response.headers) out.emplace_back(std::string(h.name), h.value);
  return out;
}

class Chain : public testing::Test {
 protected:
  Chain() {
    router_.add({Method::get, "/r", Policy::open(), [this](const Call&) {
                   trace_.push_back("handler");
                   return handler_();
                 }});
    router_.add({Method::post, "/r", Policy::open(), [this](const Call&) {
                   trace_.push_back("handler");
                   return handler_();
                 }});
    router_.add({Method::get, "/only-get", Policy::open(), [this](const Call&) {
                   trace_.push_back("handler");
                   return handler_();
                 }});
  }

  // Runs the call for `method` and `path` through `pipeline`.
  Response handle(const Pipeline& pipeline, std::string_view path = "/r",
                  Method method = Method::get) {
    Request request{.method = method, .path = path};
    request.header_lookup = lookup_;
    const auto match = router_.find(request);
    Call call{request, match.route, match.allow};
    return run_blocking(pipeline.handle(call));
  }
  // Pipeline::finish on a response the server made itself for a request to `path`.
  Response finish(const Pipeline& pipeline, Response response, std::string_view path = "/r") {
    Request request{.method = Method::post, .path = path};
    request.header_lookup = lookup_;
    Call call{request};
    pipeline.finish(call, response);
    return response;
  }

  Trace trace_;
  std::function<boost::asio::awaitable<Response>()> handler_ =
      []() -> boost::asio::awaitable<Response> {
    co_return Response{.status = 200, .content_type = ContentType::plain, .body = "handled"};
  };
  std::map<std::string, std::string> headers_;  // names in lower case

 private:
  std::function<std::string_view(std::string_view)> lookup_fn_ = [this](std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto found = headers_.find(lower);
    return found == headers_.end() ? std::string_view{} : std::string_view(found->second);
  };
  Request::HeaderLookup lookup_{lookup_fn_};

 protected:
  Router router_;  // GET and POST /r, GET /only-get
};

TEST_F(Chain, StepsRunOutermostFirstAndSeeTheResponseInnermostFirst) {
  Recorder a{"a", trace_};
  Gate gate{trace_};
  Preparer prep{trace_};
  Watcher watch{trace_};
  Recorder b{"b", trace_};
  const billing::Chain<Recorder, Gate, Preparer, Watcher, Recorder> chain(a, gate, prep, watch, b);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "handled");
  EXPECT_THAT(trace_,
              ElementsAre("a.before", "gate.before", "prep.ready", "prep.prepare", "b.before",
                          "handler", "b.after 200", "watch.after 200", "a.after 200"));
  EXPECT_THAT(headers_of(response),
              ElementsAre(std::pair<std::string, std::string>{"X-Seen-By", "b"},
                          std::pair<std::string, std::string>{"X-Seen-By", "a"}));
}

TEST_F(Chain, AReadyCallIsNotPrepared) {
  Preparer prep{trace_, true};
  Watcher watch{trace_};
  const billing::Chain<Preparer, Watcher> chain(prep, watch);
  EXPECT_EQ(handle(chain).status, 200);
  EXPECT_THAT(trace_, ElementsAre("prep.ready", "handler", "watch.after 200"));
}

TEST_F(Chain, AStepThatAnswersStopsTheRestAndTheHandler) {
  Recorder a{"a", trace_};
  Gate gate{trace_, [](Call&) { return detail_response(429, "Slow down"); }};
  Preparer prep{trace_};
  Watcher watch{trace_};
  Recorder b{"b", trace_};
  const billing::Chain<Recorder, Gate, Preparer, Watcher, Recorder> chain(a, gate, prep, watch, b);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.body, R"({"detail":"Slow down"})");
  EXPECT_THAT(trace_, ElementsAre("a.before", "gate.before", "a.after 429"));
}

TEST_F(Chain, AnInnerAnswerPassesBackThroughTheOuterSteps) {
  Recorder a{"a", trace_};
  Watcher watch{trace_};
  Recorder b{"b", trace_, [](Call&) { return detail_response(403, "No"); }};
  Gate gate{trace_};
  const billing::Chain<Recorder, Watcher, Recorder, Gate> chain(a, watch, b, gate);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 403);
  EXPECT_THAT(trace_,
              ElementsAre("a.before", "b.before", "b.after 403", "watch.after 403", "a.after 403"));
}

TEST_F(Chain, AnApiErrorFromAStepIsItsDetailAndTheStepsReachedSeeIt) {
  Recorder a{"a", trace_};
  Watcher watch{trace_};
  Recorder b{"b", trace_, [](Call&) -> std::optional<Response> {
               throw ApiError(403, "Not enough permissions");
             }};
  Recorder c{"c", trace_};
  const billing::Chain<Recorder, Watcher, Recorder, Recorder> chain(a, watch, b, c);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(response.content_type, ContentType::json);
  EXPECT_EQ(response.body, R"({"detail":"Not enough permissions"})");
  // `b` was reached (it threw): its `after` runs; `c` was not.
  EXPECT_THAT(trace_,
              ElementsAre("a.before", "b.before", "b.after 403", "watch.after 403", "a.after 403"));
}

TEST_F(Chain, AnApiErrorFromPrepareIsItsDetail) {
  Recorder a{"a", trace_};
  Preparer prep{trace_, false, [] { throw ApiError(503, "Service unavailable"); }};
  Recorder b{"b", trace_};
  const billing::Chain<Recorder, Preparer, Recorder> chain(a, prep, b);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, R"({"detail":"Service unavailable"})");
  EXPECT_THAT(trace_, ElementsAre("a.before", "prep.ready", "prep.prepare", "a.after 503"));
}

TEST_F(Chain, AnApiErrorFromTheHandlerIsItsDetailAndEveryStepSeesIt) {
  handler_ = []() -> boost::asio::awaitable<Response> {
    throw ApiError(422,
                   json::array{json::object{
                       {"type", "missing"}, {"loc", {"body", "id"}}, {"msg", "Field required"}}});
    co_return Response{};
  };
  Recorder a{"a", trace_};
  Watcher watch{trace_};
  const billing::Chain<Recorder, Watcher> chain(a, watch);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 422);
  EXPECT_EQ(
      json::parse(response.body),
      json::parse(R"({"detail":[{"type":"missing","loc":["body","id"],"msg":"Field required"}]})"));
  EXPECT_THAT(trace_, ElementsAre("a.before", "handler", "watch.after 422", "a.after 422"));
}

TEST_F(Chain, OtherExceptionsAre500WithoutTheirMessage) {
  const struct {
    const char* name;
    std::function<void()> thrower;
  } cases[] = {
      {"std::exception", [] { throw std::runtime_error("password=hunter2 at db.internal"); }},
      {"not a std::exception", [] { throw 42; }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    trace_.clear();
    handler_ = [&c]() -> boost::asio::awaitable<Response> {
      c.thrower();
      co_return Response{};
    };
    Recorder a{"a", trace_};
    Watcher watch{trace_};
    const billing::Chain<Recorder, Watcher> chain(a, watch);
    const auto response = handle(chain);
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(response.body, R"({"detail":"Internal server error"})");
    EXPECT_THAT(trace_, ElementsAre("a.before", "handler", "watch.after 500", "a.after 500"));
  }
  // From a step, too: the steps reached see the 500, the handler never runs.
  trace_.clear();
  Recorder a{"a", trace_};
  Gate gate{trace_, [](Call&) -> std::optional<Response> { throw std::logic_error("bug"); }};
  Watcher watch{trace_};
  const billing::Chain<Recorder, Gate, Watcher> chain(a, gate, watch);
  const auto response = handle(chain);
  EXPECT_EQ(response.status, 500);
  EXPECT_THAT(response.body, Not(HasSubstr("bug")));
  EXPECT_THAT(trace_, ElementsAre("a.before", "gate.before", "a.after 500"));
}

TEST_F(Chain, NoRouteIs404OrA405NamingThePathsMethods) {
  Recorder a{"a", trace_};
  const billing::Chain<Recorder> chain(a);

  const auto missing = handle(chain, "/missing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"detail":"Not Found"})");
  EXPECT_THAT(headers_of(missing),
              ElementsAre(std::pair<std::string, std::string>{"X-Seen-By", "a"}));  // no Allow
  EXPECT_THAT(trace_, ElementsAre("a.before", "a.after 404"));

  const auto other = handle(chain, "/r", Method::other);
  EXPECT_EQ(other.status, 405);
  EXPECT_EQ(other.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_THAT(headers_of(other),
              ElementsAre(std::pair<std::string, std::string>{"Allow", "GET, HEAD, POST"},
                          std::pair<std::string, std::string>{"X-Seen-By", "a"}));

  const auto post = handle(chain, "/only-get", Method::post);
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(headers_of(post).front(), (std::pair<std::string, std::string>{"Allow", "GET, HEAD"}));
  EXPECT_EQ(std::count(trace_.begin(), trace_.end(), "handler"), 0);
}

TEST_F(Chain, FinishRunsOnlyTheStepsThatSeeResponses) {
  Recorder a{"a", trace_, [](Call&) { return detail_response(500, "ignored in finish"); }};
  Gate gate{trace_};
  Preparer prep{trace_};
  Watcher watch{trace_};
  Recorder b{"b", trace_};
  const billing::Chain<Recorder, Gate, Preparer, Watcher, Recorder> chain(a, gate, prep, watch, b);
  const auto response = finish(chain, detail_response(413, "Request body too large"));
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.body, R"({"detail":"Request body too large"})");
  // The observers' own set-up (their `before`), then every `after`, innermost first; no gate,
  // no preparation, no handler.
  EXPECT_THAT(trace_,
              ElementsAre("a.before", "b.before", "b.after 413", "watch.after 413", "a.after 413"));
}

TEST_F(Chain, FinishGivesTheServersOwnAnswersARequestId) {
  RequestIds ids;
  Watcher watch{trace_};
  const billing::Chain<RequestIds, Watcher> chain(ids, watch);
  headers_["x-request-id"] = "given-id";
  const auto given = finish(chain, detail_response(400, "Malformed HTTP request"));
  EXPECT_THAT(headers_of(given),
              ElementsAre(std::pair<std::string, std::string>{"X-Request-Id", "given-id"}));
  headers_.clear();
  const auto made = finish(chain, detail_response(400, "Malformed HTTP request"));
  ASSERT_EQ(made.headers.size(), 1u);
  EXPECT_EQ(made.headers.front().name, "X-Request-Id");
  EXPECT_EQ(made.headers.front().value.size(), 16u);
}

TEST_F(Chain, TheRealObservingStepsSeeEveryCall) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
  const ManualClock clock(TimePoint(std::chrono::seconds(1'800'000'000)));
  {
    RequestIds ids;
    AccessLog log(clock, pipe_fds[1], std::chrono::hours(1));
    RouteMetrics metrics(router_);
    Recorder inner{"inner", trace_};
    const billing::Chain<RequestIds, AccessLog, RouteMetrics, Recorder> chain(ids, log, metrics,
                                                                              inner);
    headers_["x-request-id"] = "chain-1";
    // On a thread of its own: RouteMetrics keeps a per-thread shard keyed by its address, which
    // an earlier test's metrics may have had (RouteMetrics.ANewInstanceWhereAnOldOneWas...).
    Response response;
    std::thread([&] {
      response = handle(chain);
      headers_.clear();
      EXPECT_EQ(handle(chain, "/missing").status, 404);
    }).join();
    EXPECT_EQ(response.status, 200);
    EXPECT_THAT(headers_of(response),
                ElementsAre(std::pair<std::string, std::string>{"X-Seen-By", "inner"},
                            std::pair<std::string, std::string>{"X-Request-Id", "chain-1"}));

    const auto snapshot = metrics.snapshot();
    ASSERT_EQ(snapshot.counts.size(), 2u);
    EXPECT_EQ(snapshot.counts[0].route, "/r");
    EXPECT_EQ(snapshot.counts[0].status, 200);
    EXPECT_EQ(snapshot.counts[0].requests, 1u);
    EXPECT_EQ(snapshot.counts[1].route, "");
    EXPECT_EQ(snapshot.counts[1].status, 404);
    EXPECT_EQ(snapshot.counts[1].requests, 1u);
    log.flush();
  }
  char buffer[4096];
  const auto n = ::read(pipe_fds[0], buffer, sizeof buffer);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_GT(n, 0);
  const std::string written(buffer, static_cast<std::size_t>(n));
  EXPECT_THAT(written,
              HasSubstr(R"("request_id":"chain-1","method":"GET","route":"/r","status":200)"));
  EXPECT_THAT(written, HasSubstr(R"("route":null,"status":404)"));
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 2);
}

}  // namespace
}  // namespace billing::http_test
