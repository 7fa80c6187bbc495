#pragma once
// Seeded mutations of JSON documents, for tests that send what no client or Stripe would: a
// member removed, or any value replaced by one of another type, an extreme number, a long string,
// U+0000, or text made to look like SQL.
#include <random>
#include <string>

#include <boost/json/value.hpp>

namespace billing::testing {

// One mutation of `root`, somewhere in it (the root included), chosen by `random`. `token` is
// the run's own text: an id it becomes is new to a database shared with earlier runs.
void mutate(boost::json::value& root, std::mt19937_64& random, const std::string& token);

}  // namespace billing::testing
