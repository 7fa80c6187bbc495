#include "http/route.hpp"

#include <stdexcept>

namespace billing {
namespace {

// Whether `path` fits `pattern` segment by segment, a `{name}` segment taking any non-empty
// one; on a match the named segments go to `params`.
bool matches(std::string_view pattern, std::string_view path, Request& request) {
  request.path_params.clear();  // of a pattern tried before that did not match in the end
  if (pattern == path) return true;
  if (pattern.find('{') == std::string_view::npos) return false;
  while (!pattern.empty() && !path.empty()) {
    if (pattern.front() != '/' || path.front() != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const auto pattern_end = std::min(pattern.find('/'), pattern.size());
    const auto path_end = std::min(path.find('/'), path.size());
    const auto want = pattern.substr(0, pattern_end);
    const auto got = path.substr(0, path_end);
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      if (got.empty()) return false;
      request.path_params.emplace_back(want.substr(1, want.size() - 2), got);
    } else if (want != got) {
      return false;
    }
    pattern.remove_prefix(pattern_end);
    path.remove_prefix(path_end);
  }
  return pattern.empty() && path.empty();
}

}  // namespace

const Identity& Call::caller() const {
  if (!identity) throw std::logic_error("a handler asked for the caller of a route without token");
  return *identity;
}

const Policy& Call::policy() const {
  static constexpr Policy kNoRoute = Policy::open();
  return route ? route->policy : kNoRoute;
}

void Router::add(Route route) {
  if (route.method == Method::other) throw std::logic_error("a route needs GET or POST");
  if (route.policy.needs_token() && route.policy.admits_nobody())
    throw std::logic_error("a route whose policy admits no role: " + route.pattern);
  if (route.policy.body_limit() > kLargeBodyLimit)
    throw std::logic_error("body limit above the server's largest: " + route.pattern);
  route.index = count_++;
  for (auto& entry : paths_) {
    if (entry.pattern != route.pattern) continue;
    for (const auto& existing : entry.routes)
      if (existing.method == route.method)
        throw std::logic_error("route declared twice: " + route.pattern);
    entry.routes.push_back(std::move(route));
    return;
  }
  std::string pattern = route.pattern;
  const bool has_params = pattern.find('{') != std::string::npos;
  paths_.push_back({std::move(pattern), has_params, {}});
  paths_.back().routes.push_back(std::move(route));
}

Router::Match Router::find(Request& request) const {
  // Literal patterns first, so that /stripe/subscription/cancel is not taken for
  // /stripe/subscription/{sub_id}; a 405 only when no pattern that fits has the method, with
  // the methods of every pattern that fits.
  bool get = false, post = false;
  for (const bool with_params : {false, true}) {
    for (const auto& entry : paths_) {
      if (entry.has_params != with_params || !matches(entry.pattern, request.path, request))
        continue;
      for (const auto& route : entry.routes) {
        if (route.method == request.method) return {&route, {}};
        (route.method == Method::get ? get : post) = true;
      }
    }
  }
  request.path_params.clear();
  // A GET route answers HEAD too (the server leaves the body out).
  return {nullptr, get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : post ? "POST" : ""};
}

std::vector<const Route*> Router::routes() const {
  std::vector<const Route*> out;
  for (const auto& entry : paths_)
    for (const auto& route : entry.routes) out.push_back(&route);
  return out;
}

}  // namespace billing
