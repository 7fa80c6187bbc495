// The router: literal and `{name}` patterns, 404 and 405, and the declarations it refuses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "http/route.hpp"

namespace billing::http_test {
namespace {

using testing::ElementsAre;

Handler no_handler() {
  return [](const Call&) -> boost::asio::awaitable<Response> { co_return Response{}; };
}

Route route(Method method, std::string pattern, Policy policy = Policy::open()) {
  return {method, std::move(pattern), policy, no_handler()};
}

struct Found {
  const Route* route;
  std::string allow;
  Request request;
};

Found find(const Router& router, std::string_view path, Method method = Method::get) {
  Found found{nullptr, "", Request{.method = method, .path = path}};
  const auto match = router.find(found.request);
  found.route = match.route;
  found.allow = std::string(match.allow);
  return found;
}

TEST(Router, LiteralPatternsMatchTheWholePathExactly) {
  Router router;
  router.add(route(Method::get, "/a"));
  router.add(route(Method::get, "/a/b"));
  EXPECT_EQ(find(router, "/a").route->pattern, "/a");
  EXPECT_EQ(find(router, "/a/b").route->pattern, "/a/b");
  for (const char* path : {"/", "", "/a/", "/A", "/a/b/c", "/ab", "a", "/a%2Fb"}) {
    SCOPED_TRACE(path);
    const auto found = find(router, path);
    EXPECT_EQ(found.route, nullptr);
    EXPECT_EQ(found.allow, "");  // 404
  }
}

TEST(Router, AParameterTakesOneNonEmptySegmentDecoded) {
  Router router;
  router.add(route(Method::get, "/things/{id}/parts"));
  router.add(route(Method::post, "/pairs/{left}/{right}"));

  const auto spaced = find(router, "/things/a%20b/parts");
  ASSERT_NE(spaced.route, nullptr);
  EXPECT_EQ(spaced.route->pattern, "/things/{id}/parts");
  EXPECT_EQ(spaced.request.path_param("id"), "a b");
  EXPECT_EQ(spaced.request.path_param("other"), "");
  EXPECT_EQ(find(router, "/things/a%2Fb/parts").request.path_param("id"), "a/b");
  EXPECT_EQ(find(router, "/things/caf%C3%A9/parts").request.path_param("id"), "caf\xc3\xa9");

  const auto pair = find(router, "/pairs/x/y%3Dz", Method::post);
  ASSERT_NE(pair.route, nullptr);
  EXPECT_EQ(pair.request.path_param("left"), "x");
  EXPECT_EQ(pair.request.path_param("right"), "y=z");

  for (const char* path : {"/things//parts", "/things/parts", "/things/a/b/parts",
                           "/things/a/parts/", "/things/a", "/pairs/x/", "/pairs//y"}) {
    SCOPED_TRACE(path);
    const auto found = find(router, path, path[1] == 'p' ? Method::post : Method::get);
    EXPECT_EQ(found.route, nullptr);
    EXPECT_EQ(found.allow, "");
  }
}

TEST(Router, AKnownPathWithAnotherMethodNamesItsMethods) {
  Router router;
  router.add(route(Method::get, "/r"));
  router.add(route(Method::post, "/r"));
  router.add(route(Method::post, "/things/{id}"));
  EXPECT_EQ(find(router, "/r", Method::get).route->method, Method::get);
  EXPECT_EQ(find(router, "/r", Method::post).route->method, Method::post);
  const auto other = find(router, "/r", Method::other);
  EXPECT_EQ(other.route, nullptr);
  EXPECT_EQ(other.allow, "GET, HEAD, POST");
  const auto thing = find(router, "/things/1", Method::get);
  EXPECT_EQ(thing.route, nullptr);
  EXPECT_EQ(thing.allow, "POST");
}

TEST(Router, RoutesAreListedInDeclarationOrderWithTheirIndex) {
  Router router;
  router.add(route(Method::get, "/a"));
  router.add(route(Method::post, "/b"));
  router.add(route(Method::post, "/a"));
  std::vector<std::pair<std::string, std::size_t>> listed;
  for (const Route* r : router.routes()) listed.emplace_back(r->pattern, r->index);
  // Grouped by path, each with the index of its declaration.
  EXPECT_THAT(listed, ElementsAre(std::pair<std::string, std::size_t>{"/a", 0},
                                  std::pair<std::string, std::size_t>{"/a", 2},
                                  std::pair<std::string, std::size_t>{"/b", 1}));
}

TEST(Router, RefusesRoutesThatCannotBeServed) {
  Router router;
  router.add(route(Method::get, "/a"));
  EXPECT_THROW(router.add(route(Method::get, "/a")), std::logic_error);  // twice
  EXPECT_THROW(router.add(route(Method::other, "/b")), std::logic_error);
  EXPECT_THROW(
      router.add(route(Method::post, "/c", Policy::open().with_body_limit(kLargeBodyLimit + 1))),
      std::logic_error);
  EXPECT_NO_THROW(
      router.add(route(Method::post, "/d", Policy::open().with_body_limit(kLargeBodyLimit))));
}

TEST(Router, PoliciesSayWhatTheStepsCheck) {
  constexpr auto open = Policy::open();
  static_assert(!open.needs_token() && !open.needs_csrf() && open.body_limit() == kJsonBodyLimit);
  constexpr auto read = Policy::read({Role::hospital});
  static_assert(read.needs_token() && !read.needs_csrf() && read.admits(Role::hospital) &&
                !read.admits(Role::admin));
  constexpr auto write =
      Policy::write(RoleSet::all()).with_body_limit(kLargeBodyLimit).denying_with("Admins only");
  static_assert(write.needs_token() && write.needs_csrf() && write.body_limit() == kLargeBodyLimit);
  EXPECT_EQ(write.denial(), "Admins only");
  EXPECT_EQ(read.denial(), "Not enough permissions");
}

// A pattern that fails part-way fills path_params; a literal route matched after it must not
// inherit them: path_param is "" for a name its pattern does not have.
TEST(Router, ParametersOfAPatternThatDidNotMatchDoNotLeakIntoTheRouteThatDid) {
  Router router;
  router.add(route(Method::get, "/things/{id}/parts"));
  router.add(route(Method::get, "/things/x/other"));
  const auto found = find(router, "/things/x/other");
  ASSERT_NE(found.route, nullptr);
  EXPECT_EQ(found.route->pattern, "/things/x/other");
  EXPECT_EQ(found.request.path_param("id"), "");
  EXPECT_TRUE(found.request.path_params.empty());
}

// A literal pattern wins over a `{name}` one that also fits, whatever the order of declaration,
// and a 405 comes only when no pattern that fits has the method (the /stripe/* routes need both).
TEST(Router, LiteralPatternsWinAndA405NeedsEveryFittingPatternToLackTheMethod) {
  Router router;
  router.add(route(Method::get, "/stripe/subscription/{sub_id}"));
  router.add(route(Method::post, "/stripe/subscription/cancel"));
  const auto cancel = find(router, "/stripe/subscription/cancel", Method::post);
  ASSERT_NE(cancel.route, nullptr);
  EXPECT_EQ(cancel.route->pattern, "/stripe/subscription/cancel");
  EXPECT_TRUE(cancel.request.path_params.empty());

  const auto read = find(router, "/stripe/subscription/cancel", Method::get);
  ASSERT_NE(read.route, nullptr);  // GET has only the parameter pattern: sub_id "cancel"
  EXPECT_EQ(read.route->pattern, "/stripe/subscription/{sub_id}");
  EXPECT_EQ(read.request.path_param("sub_id"), "cancel");

  const auto other = find(router, "/stripe/subscription/sub_1", Method::post);
  EXPECT_EQ(other.route, nullptr);
  EXPECT_EQ(other.allow, "GET, HEAD");
}

TEST(Router, RefusesATokenPolicyThatAdmitsNoRole) {
  Router router;
  EXPECT_THROW(router.add(route(Method::get, "/a", Policy::read({}))), std::logic_error);
  EXPECT_THROW(router.add(route(Method::post, "/b", Policy::write({}))), std::logic_error);
  EXPECT_NO_THROW(router.add(route(Method::get, "/c", Policy::open())));
}

TEST(Response, RefusesHeaderValuesThatWouldSplitTheResponse) {
  Response response;
  EXPECT_THROW(response.with_header("Location", "/x\r\nSet-Cookie: a=b"), std::invalid_argument);
  EXPECT_THROW(response.with_header("Location", std::string("/x\0y", 4)), std::invalid_argument);
  EXPECT_THROW(response.with_header("Retry-After", "1\n"), std::invalid_argument);
  response.with_header("X-Note", "tabs\tare fine");
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers.front().value, "tabs\tare fine");
}

}  // namespace
}  // namespace billing::http_test
