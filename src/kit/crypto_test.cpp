#include "kit/crypto.hpp"

#include <gtest/gtest.h>

namespace billing {
namespace {

// FIPS 180-2's and RFC 4231's test vectors.
TEST(Crypto, Sha256AndHmacSha256MatchTheirStandardsVectors) {
  EXPECT_EQ(hex_encode(as_chars(sha256("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_encode(as_chars(sha256(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_encode(as_chars(hmac_sha256("Jefe", "what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4648 3.5: the bits a last character carries beyond the encoded bytes are zero, so that
// each byte string has one spelling.
TEST(Crypto, Base64UrlDecodesOnlyTheOneSpellingOfEachByteString) {
  EXPECT_EQ(base64url_decode("QQ"), "A");
  EXPECT_EQ(base64url_decode("QUI"), "AB");
  EXPECT_EQ(base64url_decode("_-8"), "\xff\xef");
  EXPECT_EQ(base64url_decode("QR"), std::nullopt);    // "A" with a stray bit
  EXPECT_EQ(base64url_decode("QUJ"), std::nullopt);   // "AB" with a stray bit
  EXPECT_EQ(base64url_decode("QQ=="), std::nullopt);  // padded
  EXPECT_EQ(base64url_decode("Q"), std::nullopt);
}

}  // namespace
}  // namespace billing
