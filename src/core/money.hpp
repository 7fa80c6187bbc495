#pragma once
// Money is whole cents, an integer, everywhere: in the domain, the database and provider calls.
// It becomes a decimal only on its way out of the API (money_json).
#include <cstdint>

#include <boost/json/value.hpp>

namespace billing {

using Cents = std::int64_t;

// 49900 -> 499.0, 479040 -> 4790.4: exact, printed by kit/json.hpp as the API documents it.
boost::json::value money_json(Cents cents);

}  // namespace billing
