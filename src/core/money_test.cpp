#include "core/money.hpp"

#include <gtest/gtest.h>

#include <string>

#include "kit/json.hpp"

namespace billing {
namespace {

TEST(Money, MoneyPrintsAsTheSpecShowsIt) {
  EXPECT_EQ(to_json(money_json(49900)), "499.0");
  EXPECT_EQ(to_json(money_json(479040)), "4790.4");
  EXPECT_EQ(to_json(money_json(959040)), "9590.4");
  EXPECT_EQ(to_json(money_json(47040)), "470.4");
  EXPECT_EQ(to_json(money_json(95040)), "950.4");
  EXPECT_EQ(to_json(money_json(1)), "0.01");
  EXPECT_EQ(to_json(money_json(0)), "0.0");
  EXPECT_EQ(to_json(money_json(123456789012)), "1234567890.12");
  EXPECT_EQ(to_json(money_json(-250)), "-2.5");
}

TEST(Money, EveryCentAmountRoundTrips) {
  for (std::int64_t cents = 0; cents < 200'000; cents += 7) {
    const auto text = to_json(money_json(cents));
    const auto dot = text.find('.');
    ASSERT_NE(dot, std::string::npos) << text;
    const auto whole = std::stoll(text.substr(0, dot));
    auto fraction = text.substr(dot + 1);
    ASSERT_LE(fraction.size(), 2u) << text;
    if (fraction.size() == 1) fraction += "0";
    EXPECT_EQ(whole * 100 + std::stoll(fraction), cents) << text;
  }
}

}  // namespace
}  // namespace billing
