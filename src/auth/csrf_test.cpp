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
  EXPECT_EQ(csrf.refusal(issued.token, "user-1"), std::nullopt);
  EXPECT_EQ(csrf.refusal(issued.token, "user-2"), CsrfFailure::other_user);
  clock.advance(59min);
  EXPECT_EQ(csrf.refusal(issued.token, "user-1"), std::nullopt);
  clock.advance(1min);
  EXPECT_EQ(csrf.refusal(issued.token, "user-1"), CsrfFailure::expired);
}

TEST(Csrf, RejectsTamperedAndForeignTokens) {
  SystemClock clock;
  CsrfTokens csrf("csrf-secret", clock, 60min);
  CsrfTokens other("another-secret", clock, 60min);
  const auto token = csrf.issue("user-1").token;
  EXPECT_EQ(csrf.refusal(other.issue("user-1").token, "user-1"), CsrfFailure::signature);
  EXPECT_EQ(csrf.refusal("", "user-1"), CsrfFailure::missing);
  EXPECT_EQ(csrf.refusal("garbage", "user-1"), CsrfFailure::malformed);
  EXPECT_EQ(csrf.refusal(token.substr(0, token.size() - 1), "user-1"), CsrfFailure::signature);
  std::string changed_expiry = token;
  changed_expiry[token.find('.') + 1] ^= 1;
  EXPECT_EQ(csrf.refusal(changed_expiry, "user-1"), CsrfFailure::signature);
  EXPECT_NE(csrf.issue("user-1").token, csrf.issue("user-1").token);  // a fresh nonce each time
}

}  // namespace
}  // namespace billing
