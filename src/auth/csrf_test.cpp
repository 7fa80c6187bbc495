#include "auth/csrf.hpp"

#include <gtest/gtest.h>

namespace billing {
namespace {

using namespace std::chrono_literals;

TEST(Csrf, ValidForItsSubjectUntilItExpires) {
  ManualClock clock{std::chrono::system_clock::from_time_t(1'800'000'000)};
  CsrfTokens csrf("csrf-secret", clock, 60min);
  const auto issued = csrf.issue("user-1");
  EXPECT_EQ(issued.expires_at, clock.now() + 60min);
  EXPECT_TRUE(csrf.valid(issued.token, "user-1"));
  EXPECT_FALSE(csrf.valid(issued.token, "user-2"));
  clock.advance(59min);
  EXPECT_TRUE(csrf.valid(issued.token, "user-1"));
  clock.advance(1min);
  EXPECT_FALSE(csrf.valid(issued.token, "user-1"));
}

TEST(Csrf, RejectsTamperedAndForeignTokens) {
  SystemClock clock;
  CsrfTokens csrf("csrf-secret", clock, 60min);
  CsrfTokens other("another-secret", clock, 60min);
  const auto token = csrf.issue("user-1").token;
  EXPECT_FALSE(csrf.valid(other.issue("user-1").token, "user-1"));
  EXPECT_FALSE(csrf.valid("", "user-1"));
  EXPECT_FALSE(csrf.valid("garbage", "user-1"));
  EXPECT_FALSE(csrf.valid(token.substr(0, token.size() - 1), "user-1"));
  std::string changed_expiry = token;
  changed_expiry[token.find('.') + 1] ^= 1;
  EXPECT_FALSE(csrf.valid(changed_expiry, "user-1"));
  EXPECT_NE(csrf.issue("user-1").token, csrf.issue("user-1").token);  // a fresh nonce each time
}

}  // namespace
}  // namespace billing
