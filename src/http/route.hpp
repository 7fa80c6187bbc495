#pragma once
// A route is declared next to its handler, with a typed policy: which Action it performs (the
// permission matrix decides who may), and whether it changes state (then a CSRF token is due).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/identity.hpp"
#include "auth/permissions.hpp"
#include "http/request.hpp"

namespace billing {

struct Call {
  const Request* request;
  Identity caller;  // empty for public routes
};

using Handler = std::function<boost::asio::awaitable<Response>(Call)>;

struct Policy {
  std::optional<Action> action;  // none: public, no token needed
  bool csrf = false;             // a state-changing route
};

struct Route {
  Method method;
  std::string path;
  Policy policy;
  Handler handler;
};

class Router {
 public:
  void add(Route route);

  struct Match {
    const Route* route = nullptr;  // null: see `allow`
    std::string_view allow;        // empty: no such path (404); else the path's methods (405)
  };
  Match find(Method method, std::string_view path) const;

 private:
  struct PathRoutes {
    std::string path;
    std::vector<Route> routes;
    std::string allow;
  };
  std::vector<PathRoutes> paths_;
};

}  // namespace billing
