// Our webhook signatures against Stripe's own library (Debian's python3-stripe), both ways: what
// we sign, Stripe verifies; what Stripe signs, we verify; neither accepts a tampered body.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "kit/crypto.hpp"
#include "payments/webhook_signature.hpp"
#include "tests/e2e/client.hpp"

namespace billing {
namespace {

const std::string kSigner = BILLING_SOURCE_DIR "/tests/payments/stripe_signer.py";
constexpr std::string_view kSecret = "whsec_e2e_0123456789abcdef";

class StripeSigner : public ::testing::Test {
 protected:
  e2e::TempDir dir;
  const SystemClock clock;
  int runs = 0;

  std::string write(const std::string& name, std::string_view payload) {
    const auto path = dir.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << payload;
    return path;
  }
  // Runs the signer; its standard output (without the newline) and exit status.
  std::pair<int, std::string> stripe(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/python3", kSigner};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto log = dir.path() + "/signer" + std::to_string(runs++) + ".log";
    const int code = e2e::run_command(argv, log);
    std::ifstream in(log);
    std::string out;
    std::getline(in, out);
    return {code, out};
  }
};

TEST_F(StripeSigner, VerifiesOurHeadersAndWeVerifyItsOwn) {
  const WebhookSignature ours(kSecret);
  for (int i = 0; i < 3; ++i) {
    // A Stripe-shaped event with text a naive signer could get wrong (unicode, quotes, newlines).
    const std::string payload = R"({"id":"evt_)" + random_hex(8) +
                                R"(","type":"invoice.paid","data":{"object":{"amount_paid":49900,)"
                                R"("description":"Lite \u00e9t\u00e9 \"plan\"\n"}}})";
    const auto file = write("event" + std::to_string(i) + ".json", payload);

    const auto now = clock.now();
    const auto [verified, why] =
        stripe({"verify", std::string(kSecret), file, ours.sign(payload, now)});
    EXPECT_EQ(verified, 0) << why;

    const auto t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const auto [signed_ok, header] =
        stripe({"sign", std::string(kSecret), file, std::to_string(t)});
    ASSERT_EQ(signed_ok, 0) << header;
    EXPECT_TRUE(ours.verify(header, payload, now)) << header;
    EXPECT_FALSE(ours.verify(header, payload + " ", now));

    const auto tampered = write("tampered" + std::to_string(i) + ".json", payload + " ");
    EXPECT_EQ(stripe({"verify", std::string(kSecret), tampered, ours.sign(payload, now)}).first, 1);
  }
}

}  // namespace
}  // namespace billing
