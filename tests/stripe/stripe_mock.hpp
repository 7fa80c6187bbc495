#pragma once
// stripe-mock (Stripe's API emulator, third_party/stripe-mock/) as a child process of the test,
// on ports the system picks (so two tests never race for one), stopped with the object.
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tests/e2e/client.hpp"

namespace billing::stripe_test {

// The stripe-mock binary: BILLING_STRIPE_MOCK (scripts/test.sh builds it and sets it), else
// build-stripe-mock/stripe-mock in the source tree if it is there.
std::optional<std::string> stripe_mock_binary();
// BILLING_REQUIRE_STRIPE_MOCK=1 (scripts/test.sh): no binary is a failure, not a skip.
bool stripe_mock_required();
// Why a test has no stripe-mock, and how to get one.
inline constexpr std::string_view kNoStripeMock =
    "no stripe-mock: set BILLING_STRIPE_MOCK or run `bash scripts/stripe_mock.sh build "
    "build-stripe-mock` (scripts/test.sh does)";

class StripeMock {
 public:
  explicit StripeMock(const std::string& binary);  // answering when it returns; else throws
  ~StripeMock();                                   // SIGTERM, then SIGKILL after 5 s
  StripeMock(const StripeMock&) = delete;
  StripeMock& operator=(const StripeMock&) = delete;

  std::string base_url() const;  // http://127.0.0.1:PORT
  std::string log() const;

 private:
  bool start(const std::string& binary);  // false if it exited before listening
  void stop();

  e2e::TempDir dir_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

// A started stripe-mock for a test of its own; without a binary, nullptr and the test skipped
// (failed when BILLING_REQUIRE_STRIPE_MOCK=1), so that the caller returns:
//   const auto mock = stripe_test::started_or_skipped();
//   if (!mock) return;
std::unique_ptr<StripeMock> started_or_skipped();

}  // namespace billing::stripe_test
