#include "auth/jwt.hpp"

#include <gtest/gtest.h>

#include "kit/api_error.hpp"
#include "kit/crypto.hpp"

namespace billing {
namespace {

using namespace std::chrono_literals;

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

class JwtTest : public ::testing::Test {
 protected:
  ManualClock clock{kNow};
  JwtCodec jwt{"secret", clock};

  // A token with the given header and claims, signed with `key`.
  static std::string craft(std::string_view header, std::string_view claims,
                           std::string_view key = "secret") {
    std::string input = base64url_encode(header) + "." + base64url_encode(claims);
    return input + "." + base64url_encode(as_chars(hmac_sha256(key, input)));
  }

  int status_of(const std::string& token) {
    try {
      jwt.verify(token);
      return 200;
    } catch (const ApiError& e) {
      return e.status;
    }
  }
};

TEST_F(JwtTest, RoundTripsEveryRole) {
  const Identity assistant{"u1", Role::assistant, "asst-1", "hosp-1"};
  const auto got = jwt.verify(jwt.sign(assistant, kNow + 30min));
  EXPECT_EQ(got.subject, "u1");
  EXPECT_EQ(got.role, Role::assistant);
  EXPECT_EQ(got.entity_id, "asst-1");
  EXPECT_EQ(got.hospital_id, "hosp-1");
  EXPECT_EQ(jwt.verify(jwt.sign({"a", Role::admin, "", ""}, kNow + 1min)).role, Role::admin);
  EXPECT_EQ(jwt.verify(jwt.sign({"h", Role::hospital, "h1", ""}, kNow + 1min)).entity_id, "h1");
}

TEST_F(JwtTest, RejectsExpiredTokens) {
  const auto token = jwt.sign({"u", Role::hospital, "h1", ""}, kNow + 1min);
  clock.advance(59s);
  EXPECT_EQ(status_of(token), 200);
  clock.advance(1s);
  try {
    jwt.verify(token);
    FAIL() << "expired token accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 401);
    EXPECT_EQ(e.detail.as_string(), "Token has expired");
  }
}

TEST_F(JwtTest, RejectsForgedAndMalformedTokens) {
  const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";
  const std::string claims =
      R"({"sub":"u","role":"hospital","role_entity_id":"h1","exp":1800000600})";
  EXPECT_EQ(status_of(craft(hs256, claims)), 200);
  const std::vector<std::string> bad{
      craft(hs256, claims, "other-secret"),
      craft(R"({"alg":"none"})", claims),
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(claims) + ".",
      craft(R"({"alg":"HS512"})", claims),
      craft(R"({"typ":"JWT"})", claims),
      craft(hs256, R"({"sub":"u","role":"hospital","role_entity_id":"h1"})"),            // no exp
      craft(hs256, R"({"sub":"u","role":"hospital","role_entity_id":"h1","exp":"x"})"),  // bad exp
      craft(hs256, R"({"sub":"u","role":"owner","role_entity_id":"h1","exp":1800000600})"),
      craft(hs256, R"({"role":"hospital","role_entity_id":"h1","exp":1800000600})"),  // no sub
      craft(hs256, R"({"sub":"u","role":"hospital","exp":1800000600})"),              // no entity
      craft(hs256, R"({"sub":"u","role":"assistant","role_entity_id":"a1","exp":1800000600})"),
      craft(hs256, R"({"sub":"u","role":"hospital","role_entity_id":"h\u0000x","exp":1800000600})"),
      craft(hs256, R"({"sub":"u","role":"hospital","role_entity_id":")" + std::string(129, 'h') +
                       R"(","exp":1800000600})"),
      craft(hs256, "[1,2]"),
      craft("not json", claims),
      "garbage",
      "a.b",
      "a.b.c.d",
      "",
      craft(hs256, claims) + "x",
      // The signature's last character with one of the bits beyond its 32 bytes set: the same
      // bytes, another spelling.
      [&] {
        constexpr std::string_view alphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        std::string token = craft(hs256, claims);
        token.back() = alphabet[alphabet.find(token.back()) ^ 1];
        return token;
      }(),
  };
  for (const auto& token : bad) EXPECT_EQ(status_of(token), 401) << token;
}

// RFC 7519 4.1.5: a token is not accepted before its `nbf`, give or take 5 s of clock skew;
// nor one issued (`iat`) later than now; and either claim must be a number when present.
TEST_F(JwtTest, HonoursNotBeforeAndIssuedAt) {
  const std::string hs256 = R"({"alg":"HS256","typ":"JWT"})";
  const auto token = [&](std::string_view extra) {
    return craft(hs256, R"({"sub":"u","role":"hospital","role_entity_id":"h1","exp":1800000600)" +
                            std::string(extra) + "}");
  };
  EXPECT_EQ(status_of(token(R"(,"nbf":1800000000)")), 200);
  EXPECT_EQ(status_of(token(R"(,"nbf":1799990000,"iat":1799990000)")), 200);
  EXPECT_EQ(status_of(token(R"(,"nbf":1800000005)")), 200);  // within the leeway
  EXPECT_EQ(status_of(token(R"(,"iat":1800000004.5)")), 200);
  EXPECT_EQ(status_of(token(R"(,"nbf":1800000006)")), 401);
  EXPECT_EQ(status_of(token(R"(,"nbf":1800000300)")), 401);
  EXPECT_EQ(status_of(token(R"(,"iat":1800000300)")), 401);
  EXPECT_EQ(status_of(token(R"(,"nbf":"1800000000")")), 401);
  EXPECT_EQ(status_of(token(R"(,"iat":"yesterday")")), 401);
  EXPECT_EQ(status_of(token(R"(,"nbf":null)")), 401);
  EXPECT_EQ(status_of(token(R"(,"iat":[1])")), 401);
  try {
    jwt.verify(token(R"(,"nbf":1800000300)"));
    FAIL() << "a token not yet valid was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.detail.as_string(), "Token is not yet valid");
  }
  clock.advance(300s);  // the same token, once its time has come
  EXPECT_EQ(status_of(token(R"(,"nbf":1800000300)")), 200);
}

}  // namespace
}  // namespace billing
