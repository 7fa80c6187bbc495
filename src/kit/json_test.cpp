#include "kit/json.hpp"

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

namespace billing {
namespace {

TEST(Json, WritesValuesAndEscapesStrings) {
  const boost::json::value v = boost::json::object{{"s", "a\"b\\c\n\x01"},
                                                   {"n", nullptr},
                                                   {"t", true},
                                                   {"i", -3},
                                                   {"a", boost::json::array{1, "x"}}};
  EXPECT_EQ(to_json(v), R"({"s":"a\"b\\c\n\u0001","n":null,"t":true,"i":-3,"a":[1,"x"]})");
}

}  // namespace
}  // namespace billing
