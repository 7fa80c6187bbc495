#pragma once
// An event object's members read as what they should be, or not at all: Stripe's objects are
// read leniently (a member of another type is as good as absent), by the effects and the webhook.
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/json/object.hpp>

namespace billing::event_members {

std::optional<std::string_view> text(const boost::json::object& o, std::string_view key);
std::optional<std::int64_t> integer(const boost::json::object& o, std::string_view key);
const boost::json::object* child(const boost::json::object& o, std::string_view key);

}  // namespace billing::event_members
