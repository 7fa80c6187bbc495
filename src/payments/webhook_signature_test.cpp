#include "payments/webhook_signature.hpp"

#include <gtest/gtest.h>

#include <string>

namespace billing {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kSecret = "whsec_test_0123456789abcdef";
constexpr std::string_view kPayload =
    R"({"id":"evt_1NbSignedByStripe","type":"invoice.payment_succeeded","amount":49900})";
const TimePoint kSent = std::chrono::system_clock::from_time_t(1'800'000'000);
// Made by Stripe's own library (python3-stripe 5.0: WebhookSignature._compute_signature of
// "1800000000." + kPayload with kSecret).
constexpr std::string_view kStripesV1 =
    "151b679d42bc1f1501721dd974d2296a9a40dd9dc83c355259710c38066e93b0";

TEST(WebhookSignature, MatchesStripesOwnSigner) {
  const WebhookSignature signature(kSecret);
  const std::string header = "t=1800000000,v1=" + std::string(kStripesV1);
  EXPECT_TRUE(signature.verify(header, kPayload, kSent));
  EXPECT_EQ(signature.sign(kPayload, kSent), header);
}

TEST(WebhookSignature, RefusesAnyChangeToTheBodyTheTimeOrTheSecret) {
  const WebhookSignature signature(kSecret);
  const std::string header = signature.sign(kPayload, kSent);
  std::string altered(kPayload);
  altered.back() = ' ';
  EXPECT_FALSE(signature.verify(header, altered, kSent));
  std::string longer(kPayload);
  longer += ' ';
  EXPECT_FALSE(signature.verify(header, longer, kSent));
  EXPECT_FALSE(WebhookSignature("whsec_other").verify(header, kPayload, kSent));
  EXPECT_FALSE(signature.verify("t=1800000001,v1=" + std::string(kStripesV1), kPayload, kSent));
  std::string flipped = header;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(signature.verify(flipped, kPayload, kSent));
}

// As Stripe's libraries verify: a signature older than 300 s is refused, one from the future
// (this clock behind Stripe's) is not.
TEST(WebhookSignature, RefusesWhatIsOlderThanTheTolerance) {
  const WebhookSignature signature(kSecret);
  const std::string header = signature.sign(kPayload, kSent);
  EXPECT_TRUE(signature.verify(header, kPayload, kSent + 300s));
  EXPECT_FALSE(signature.verify(header, kPayload, kSent + 301s));  // an old delivery replayed
  EXPECT_TRUE(signature.verify(header, kPayload, kSent - 300s));
  EXPECT_TRUE(signature.verify(header, kPayload, kSent - 1h));
}

TEST(WebhookSignature, TriesEveryV1AndOnlyV1) {
  const WebhookSignature signature(kSecret);
  const std::string v1(kStripesV1);
  const std::string wrong(64, 'a');
  EXPECT_TRUE(signature.verify("t=1800000000,v1=" + wrong + ",v1=" + v1, kPayload, kSent));
  EXPECT_TRUE(signature.verify("v1=" + v1 + ",t=1800000000,v0=" + wrong, kPayload, kSent));
  EXPECT_FALSE(signature.verify("t=1800000000,v0=" + v1, kPayload, kSent));
  std::string many = "t=1800000000";
  for (int i = 0; i < 8; ++i) many += ",v1=" + wrong;
  EXPECT_FALSE(signature.verify(many + ",v1=" + v1, kPayload, kSent));  // too many to try
}

TEST(WebhookSignature, RefusesMalformedHeaders) {
  const WebhookSignature signature(kSecret);
  // Each header is `before` + Stripe's right v1 (when `signed_`) + `after`.
  const struct {
    std::string_view before;
    bool signed_;
    std::string_view after;
  } cases[] = {
      {"", false, ""},
      {"garbage", false, ""},
      {"v1=", true, ""},  // no t
      {"t=,v1=", true, ""},
      {"t=18e8,v1=", true, ""},
      {"t=1800000000x,v1=", true, ""},
      {"t=-9223372036854775808,v1=", true, ""},
      {"t=99999999999999999999,v1=", true, ""},
      {"t=1800000000,v1=", false, ""},
      {"t=1800000000,v1=", true, "0"},
      {"t=1800000000,V1=", true, ""},
      {" t=1800000000,v1=", true, ""},
  };
  for (const auto& c : cases) {
    std::string header(c.before);
    if (c.signed_) header += kStripesV1;
    header += c.after;
    EXPECT_FALSE(signature.verify(header, kPayload, kSent)) << header;
  }
}

TEST(WebhookSignature, AnEmptySecretVerifiesNothing) {
  const WebhookSignature none("");
  EXPECT_FALSE(none.verify("t=1800000000,v1=" + std::string(kStripesV1), kPayload, kSent));
  EXPECT_THROW(none.sign(kPayload, kSent), std::logic_error);
}

}  // namespace
}  // namespace billing
