#include "tests/support/json_mutations.hpp"

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace billing::testing {
namespace {

namespace json = boost::json;

// Every value in `value`, the root included, for a mutation to pick.
void collect(json::value& value, std::vector<json::value*>& out) {
  out.push_back(&value);
  if (auto* object = value.if_object())
    for (auto& member : *object) collect(member.value(), out);
  else if (auto* array = value.if_array())
    for (auto& element : *array) collect(element, out);
}

}  // namespace

void mutate(json::value& root, std::mt19937_64& random, const std::string& token) {
  std::vector<json::value*> values;
  collect(root, values);
  json::value& target = *values[random() % values.size()];
  switch (random() % 13) {
    case 0:
      target = nullptr;
      break;
    case 1:
      target = token;
      break;
    case 2:
      target = std::string(20'000, '9');
      break;
    case 3:
      target = std::numeric_limits<std::int64_t>::max();
      break;
    case 4:
      target = std::numeric_limits<std::int64_t>::min();
      break;
    case 5:
      target = -1;
      break;
    case 6:
      target = std::numeric_limits<std::uint64_t>::max();
      break;
    case 7:
      target = 1e308;
      break;
    case 8:
      target = true;
      break;
    case 9:
      target = json::object{};
      break;
    case 10:
      target = json::array{nullptr, json::value(std::string_view("\xF0\x9F\x92\xB3\0x", 6))};
      break;
    case 11:
      target = std::string_view("in_\0x", 5);  // U+0000, which PostgreSQL cannot store
      break;
    default:
      // A member removed; where there is none, text made to look like SQL.
      if (auto* object = target.if_object(); object && !object->empty())
        object->erase(object->begin() + static_cast<std::ptrdiff_t>(random() % object->size()));
      else
        target = token + "'; DROP TABLE plans; --";
  }
}

}  // namespace billing::testing
