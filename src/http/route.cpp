#include "http/route.hpp"

#include <stdexcept>

namespace billing {

void Router::add(Route route) {
  if (route.method == Method::other) throw std::logic_error("a route needs GET or POST");
  const char* method_name = route.method == Method::get ? "GET" : "POST";
  for (auto& entry : paths_) {
    if (entry.path != route.path) continue;
    for (const auto& existing : entry.routes)
      if (existing.method == route.method)
        throw std::logic_error("route declared twice: " + route.path);
    entry.allow += std::string(", ") + method_name;
    entry.routes.push_back(std::move(route));
    return;
  }
  std::string path = route.path;
  paths_.push_back({std::move(path), {}, method_name});
  paths_.back().routes.push_back(std::move(route));
}

Router::Match Router::find(Method method, std::string_view path) const {
  for (const auto& entry : paths_) {
    if (entry.path != path) continue;
    for (const auto& route : entry.routes)
      if (route.method == method) return {&route, {}};
    return {nullptr, entry.allow};
  }
  return {};
}

}  // namespace billing
