#pragma once
// A route is declared by its domain next to its handler, with a typed policy: which roles may
// call it, whether it changes state (then a CSRF token is due), and how large a body it takes.
// Every route passes through the whole middleware chain (http/chain.hpp); the policy is what the
// steps read, so no route can skip one.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/identity.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "kit/rate_limit.hpp"

namespace billing {

inline constexpr std::size_t kJsonBodyLimit = 64 * 1024;
inline constexpr std::size_t kLargeBodyLimit = 1024 * 1024;  // the most any route may declare

// No default: a route without a policy does not compile.
class Policy {
 public:
  // Anyone, without a token (health, webhooks signed by other means).
  static constexpr Policy open() { return Policy(false, {}, false); }
  // A bearer token with one of `roles` (Router::add refuses an empty set).
  static constexpr Policy read(RoleSet roles) { return Policy(true, roles, false); }
  // A bearer token with one of `roles`, and a CSRF token bound to it: a state-changing route.
  static constexpr Policy write(RoleSet roles) { return Policy(true, roles, true); }

  constexpr Policy with_body_limit(std::size_t bytes) const {
    Policy p = *this;
    p.body_limit_ = bytes;
    return p;
  }
  // The 403 detail for a token whose role is not admitted.
  constexpr Policy denying_with(std::string_view detail) const {
    Policy p = *this;
    p.denial_ = detail;
    return p;
  }

  constexpr bool needs_token() const { return token_; }
  constexpr bool admits_nobody() const { return roles_.empty(); }
  constexpr bool needs_csrf() const { return csrf_; }
  constexpr bool admits(Role role) const { return roles_.contains(role); }
  constexpr std::size_t body_limit() const { return body_limit_; }
  constexpr std::string_view denial() const { return denial_; }

 private:
  constexpr Policy(bool token, RoleSet roles, bool csrf)
      : token_(token), roles_(roles), csrf_(csrf) {}
  bool token_;
  RoleSet roles_;
  bool csrf_;
  std::size_t body_limit_ = kJsonBodyLimit;
  std::string_view denial_ = "Not enough permissions";
};

struct Route;

// One request on its way through the chain to its handler.
struct Call {
  Request& request;
  const Route* route = nullptr;      // null: no route for this method and path
  std::string_view allow;            // with no route: the methods the path has ("" if none: 404)
  std::string request_id;            // set by the request-id step
  std::optional<Identity> identity;  // set by the authentication step for routes with a token
  std::optional<RateDecision> rate;  // set by the rate-limit step for callers it limits
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // The verified caller; only routes whose policy needs a token have one.
  const Identity& caller() const;
  const Policy& policy() const;  // the route's, or open() when there is no route
};

// Handlers get the Call by reference: the chain owns it and awaits the handler at once.
using Handler = std::function<boost::asio::awaitable<Response>(const Call&)>;

struct Route {
  Method method;
  std::string pattern;  // "/billing/plan", "/stripe/subscription/{sub_id}"
  Policy policy;
  Handler handler;
  std::size_t index = 0;  // set by the Router: 0, 1, ... in the order routes were added
};

class Router {
 public:
  void add(Route route);

  struct Match {
    const Route* route = nullptr;  // null: see `allow`
    std::string_view allow;        // empty: no such path (404); else the path's methods (405)
  };
  // Fills request.path_params from the matched pattern.
  Match find(Request& request) const;

  // Every route, for listings and tests.
  std::vector<const Route*> routes() const;

 private:
  struct PathRoutes {
    std::string pattern;
    bool has_params;  // a `{name}` segment
    std::vector<Route> routes;
  };
  std::vector<PathRoutes> paths_;
  std::size_t count_ = 0;
};

}  // namespace billing
