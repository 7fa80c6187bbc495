#include "auth/routes.hpp"

#include <boost/json/object.hpp>

#include "http/errors.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

boost::asio::awaitable<Response> get_csrf_token(const CsrfTokens& csrf, const Call& call) {
  const auto issued = csrf.issue(call.caller().subject);
  co_return json_response(boost::json::object{{"csrf_token", issued.token},
                                              {"expires_at", iso8601(issued.expires_at)}});
}

}  // namespace

void add_auth_routes(Router& router, const CsrfTokens& csrf) {
  router.add({Method::get, "/csrf-token", Policy::read(RoleSet::all()),
              [&csrf](const Call& call) { return get_csrf_token(csrf, call); }});
}

}  // namespace billing
