// SCRAM-SHA-256 server (broker/scram.hpp) against RFC 7677 §3's example exchange, and the
// messages it must refuse.
#include <gtest/gtest.h>

#include "broker/password_hash.hpp"
#include "broker/scram.hpp"

namespace harbor::broker {
namespace {

// RFC 7677 §3: user "user", password "pencil".
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramCredentials pencil() {
  auto c = scram_credentials("pencil", *base64_decode(kSalt), 4096);
  EXPECT_TRUE(c.has_value());
  return *c;
}

TEST(Scram, Rfc7677Exchange) {
  ScramServer s;
  auto user = s.client_first(kClientFirst);
  ASSERT_TRUE(user) << s.error();
  EXPECT_EQ(*user, "user");
  EXPECT_EQ(s.server_first(pencil(), kServerNonce), kServerFirst);
  auto final = s.client_final(kClientFinal);
  ASSERT_TRUE(final) << s.error();
  EXPECT_EQ(*final, kServerFinal);
  EXPECT_TRUE(s.error().empty());
}

TEST(Scram, WrongPasswordFailsAtTheProof) {
  ScramServer s;
  ASSERT_TRUE(s.client_first(kClientFirst));
  auto other = scram_credentials("pencil2", *base64_decode(kSalt), 4096);
  ASSERT_TRUE(other);
  s.server_first(*other, kServerNonce);
  EXPECT_FALSE(s.client_final(kClientFinal));
  EXPECT_NE(s.error().find("wrong password"), std::string_view::npos) << s.error();
}

TEST(Scram, ClientFinalMustMatchTheExchange) {
  const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  for (const std::string& bad : {
           "c=eSws," + nonce + proof,                // binding "y,," not "n,,"
           "c=biws,r=rOprNGfwEbeRWgbNEkqO" + proof,  // the client's nonce only
           "c=biws," + nonce,                        // no proof
           "c=biws," + nonce + ",p=AAAA",            // proof of the wrong size
           "c=biws," + nonce + ",p=not base64",      // proof not base64
           nonce + proof,                            // no c=
           // the right proof for another message: one byte of the nonce changed
           "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1" + proof,
       }) {
    ScramServer s;
    ASSERT_TRUE(s.client_first(kClientFirst));
    s.server_first(pencil(), kServerNonce);
    EXPECT_FALSE(s.client_final(bad)) << bad;
    EXPECT_FALSE(s.error().empty()) << bad;
  }
  ScramServer early;
  EXPECT_FALSE(early.client_final(kClientFinal)) << "no server-first yet";
}

TEST(Scram, ClientFirstRefusals) {
  for (std::string_view bad : {
           "p=tls-unique,,n=user,r=abc",  // channel binding asked for
           "x,,n=user,r=abc",             // unknown gs2 flag
           "n",                           // nothing after the flag
           "n,,r=abc",                    // no user
           "n,,n=,r=abc",                 // empty user
           "n,,n=us=er,r=abc",            // '=' not escaped
           "n,,n=user",                   // no nonce
           "n,,n=user,r=",                // empty nonce
           "n,,n=user,r=a b",             // nonce with a space
           "n,,m=ext,n=user,r=abc",       // mandatory extension
           "n,a=other,n=user,r=abc",      // authzid of another user
           "",
       }) {
    ScramServer s;
    EXPECT_FALSE(s.client_first(bad)) << bad;
    EXPECT_FALSE(s.error().empty()) << bad;
  }
}

TEST(Scram, UserNamesAreUnescapedAndAuthzidMayNameTheUser) {
  ScramServer s;
  auto user = s.client_first("y,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=nonce,x=ignored");
  ASSERT_TRUE(user) << s.error();
  EXPECT_EQ(*user, "a,b=c");
}

TEST(Scram, DecoysKeepTheirSaltAndMatchNoPassword) {
  const auto a = scram_decoy("secret", "nobody");
  const auto b = scram_decoy("secret", "nobody");
  EXPECT_EQ(a.salt, b.salt);
  EXPECT_EQ(a.salt.size(), 16u);
  EXPECT_NE(scram_decoy("secret", "other").salt, a.salt);
  EXPECT_NE(a.stored_key, b.stored_key);
  ScramServer s;
  ASSERT_TRUE(s.client_first(kClientFirst));
  s.server_first(a, kServerNonce);
  EXPECT_FALSE(s.client_final(kClientFinal));
}

TEST(Scram, NoncesAreFreshAndPrintable) {
  const std::string a = scram_nonce();
  const std::string b = scram_nonce();
  EXPECT_EQ(a.size(), 24u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find(','), std::string::npos);
}

}  // namespace
}  // namespace harbor::broker
