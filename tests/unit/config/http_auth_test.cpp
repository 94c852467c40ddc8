// auth.http_auth's requests (NanoMQ's keys): acl_req read like auth_req, https URLs with
// their tls { cacertfile, certfile, keyfile } files, and the errors naming file, line, key.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "config/load_helpers.hpp"

namespace harbor::config {
namespace {

using test_support::load_error;
using test_support::load_ok;

std::string http_auth(const std::string& inner) {
  return "auth {\n  http_auth {\n    auth_req { url = \"http://127.0.0.1:1/a\" }\n" + inner +
         "\n  }\n}\n";
}

// A readable file for the tls keys (its content does not matter to the config layer).
std::string temp_file() {
  std::string path = ::testing::TempDir() + "http_auth_test_ca.pem";
  std::ofstream(path) << "not checked here\n";
  return path;
}

TEST(HttpAuthConfig, AclReqIsReadWithNanoMqParams) {
  auto c =
      load_ok(http_auth("    acl_req { url = \"http://127.0.0.1:1/acl\", method = get,\n"
                        "      params = {clientid = \"%c\", access = \"%A\", topic = \"%t\", "
                        "mountpoint = \"%m\"} }"));
  const auto& acl = c.auth.http.acl_req;
  ASSERT_TRUE(acl.present);
  EXPECT_EQ(acl.url, "http://127.0.0.1:1/acl");
  EXPECT_FALSE(acl.post);
  ASSERT_EQ(acl.params.size(), 4u);
  EXPECT_EQ(acl.params[1], (std::pair<std::string, std::string>{"access", "%A"}));
  EXPECT_EQ(acl.params[3].first, "mountpoint");
  EXPECT_FALSE(c.auth.http.super_req.present);
}

TEST(HttpAuthConfig, HttpsWithTlsFiles) {
  const std::string f = temp_file();
  auto c = load_ok(
      "auth {\n  http_auth {\n    auth_req {\n      url = \"https://auth.local/a\"\n"
      "      tls { cacertfile = \"" +
      f + "\", certfile = \"" + f + "\", keyfile = \"" + f + "\" }\n    }\n  }\n}\n");
  const auto& r = c.auth.http.auth_req;
  EXPECT_EQ(r.url, "https://auth.local/a");
  EXPECT_EQ(r.cacertfile, f);
  EXPECT_EQ(r.certfile, f);
  EXPECT_EQ(r.keyfile, f);
  // No tls block: the system's CAs, no client certificate.
  auto plain = load_ok(http_auth("    super_req { url = \"https://auth.local/s\" }"));
  EXPECT_TRUE(plain.auth.http.super_req.cacertfile.empty());
}

TEST(HttpAuthConfig, TlsErrorsNameFileLineAndKey) {
  const std::string f = temp_file();
  EXPECT_EQ(load_error("auth {\n  http_auth {\n    auth_req {\n      url = \"https://h/a\"\n"
                       "      tls { cacertfile = \"/no/such/ca.pem\" }\n    }\n  }\n}\n"),
            "t.conf:5: auth.http_auth.auth_req.tls.cacertfile: cannot read \"/no/such/ca.pem\"");
  EXPECT_NE(load_error("auth {\n  http_auth {\n    auth_req {\n      url = \"https://h/a\"\n"
                       "      tls { certfile = \"" +
                       f + "\" }\n    }\n  }\n}\n")
                .find("t.conf:5: auth.http_auth.auth_req.tls: certfile and keyfile go together"),
            std::string::npos);
  EXPECT_NE(load_error("auth {\n  http_auth {\n    auth_req {\n      url = \"http://h/a\"\n"
                       "      tls { cacertfile = \"" +
                       f + "\" }\n    }\n  }\n}\n")
                .find("auth.http_auth.auth_req.tls: is for an https:// url"),
            std::string::npos);
  EXPECT_NE(load_error(http_auth("    acl_req { url = \"ftp://h/acl\" }"))
                .find("t.conf:4: auth.http_auth.acl_req.url: expected an http:// or https://"),
            std::string::npos);
  EXPECT_NE(load_error("auth {\n  http_auth {\n    auth_req {\n      url = \"https://h/a\"\n"
                       "      tls { cafile = \"x\" }\n    }\n  }\n}\n")
                .find("t.conf:5: auth.http_auth.auth_req.tls.cafile: unknown key, did you mean "
                      "auth.http_auth.auth_req.tls.certfile?"),
            std::string::npos);
}

}  // namespace
}  // namespace harbor::config
