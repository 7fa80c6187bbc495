#include "payments/event_members.hpp"

#include <cstdint>

namespace billing::event_members {

std::optional<std::string_view> text(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string_view(v->get_string());
  return std::nullopt;
}

std::optional<std::int64_t> integer(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key)) {
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= INT64_MAX)
      return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

const boost::json::object* child(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_object()) return &v->get_object();
  return nullptr;
}

}  // namespace billing::event_members
