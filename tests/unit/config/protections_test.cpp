// Protections a file asks for and HarborMQ does not enforce yet are listed with file, line
// and key, so the broker can refuse to start instead of running open (issue 9, defect 3).
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.hpp"

namespace harbor::config {
namespace {

const std::string kCompat = HARBOR_SHARED_DIR "/compat/nanomq/";

std::vector<ConfigError> protections_of(const std::string& text) {
  auto r = load_string(text, "p.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  if (!r) return {};
  return r->config->unenforced_protections;
}

std::vector<std::string> keys_of(const std::vector<ConfigError>& errors) {
  std::vector<std::string> keys;
  for (const auto& e : errors) keys.push_back(e.key);
  return keys;
}

TEST(Protections, AuthorizationRulesAreNamedWithFileAndLine) {
  auto p = protections_of(
      "mqtt {}\nauth {\n  allow_anonymous = false\n}\n"
      "authorization {\n  no_match = deny\n}\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].file, "p.conf");
  EXPECT_EQ(p[0].line, 5);
  EXPECT_EQ(p[0].key, "authorization");
  EXPECT_NE(p[0].message.find("not implemented yet"), std::string::npos) << p[0].message;
}

TEST(Protections, WhatRemovesNoProtectionIsNotListed) {
  EXPECT_TRUE(protections_of("auth { allow_anonymous = true, no_match = allow, "
                             "deny_action = ignore }\n")
                  .empty());
  // Enforced since issue 14: refusing anonymous clients, password files, ACLs, no_match.
  EXPECT_TRUE(protections_of("auth {\n  allow_anonymous = false\n  no_match = deny\n"
                             "  password = { \"u\": \"p\" }\n  acl = { rules = [] }\n}\n")
                  .empty());
  EXPECT_TRUE(protections_of("listeners.ws { bind = \"0.0.0.0:8083/mqtt\" }\n").empty());
  // Enforced: HTTP authentication of CONNECTs, the superuser question and, since
  // broker/http_acl.cpp, each publish and subscribe (acl_req).
  EXPECT_TRUE(protections_of("auth { http_auth { auth_req { url = \"http://127.0.0.1:1/a\" }\n"
                             "super_req { url = \"http://127.0.0.1:1/s\" }\n"
                             "acl_req { url = \"http://127.0.0.1:1/c\" } } }\n")
                  .empty());
  // Enforced: Basic authentication of the HTTP API (http/api_server.cpp).
  EXPECT_TRUE(protections_of("http_server { port = 8081, username = admin }\n").empty());
  EXPECT_TRUE(protections_of("listeners.ssl { enable = false, bind = \"0.0.0.0:8883\" }\n").empty());
  // Enforced: MQTT over TLS on listeners.ssl itself (app/server.cpp).
  EXPECT_TRUE(protections_of("listeners.ssl {\n  bind = \"0.0.0.0:8883\"\n}\n").empty());
}

TEST(Protections, NamedTlsListenersAreServed) {
  auto p = protections_of(
      "listeners.ssl {\n  bind = \"0.0.0.0:8883\"\n}\n"
      "listeners.wss {\n  bind = \"0.0.0.0:8086/mqtt\"\n}\n"
      "listeners.ssl.extra {\n  bind = \"0.0.0.0:8884\"\n  certfile = c.pem, keyfile = k.pem\n}\n"
      "listeners.wss.extra {\n  bind = \"0.0.0.0:8087\"\n}\n");
  EXPECT_TRUE(p.empty());
}

TEST(Protections, FromTheEnvironmentOrCommandLineToo) {
  auto r = load(LoadOptions{
      .path = "", .overrides = {"authorization.no_match=deny"}, .read_environment = false});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->config->unenforced_protections.size(), 1u);
  EXPECT_EQ(r->config->unenforced_protections[0].file, "<command line>");
}

TEST(Protections, NanoMqPlainAndExampleConfsAskForNothingUnenforced) {
  auto plain = load_file(kCompat + "nanomq.conf");
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_TRUE(plain->config->unenforced_protections.empty());
  auto example = load_file(kCompat + "nanomq_example.conf");
  ASSERT_TRUE(example) << example.error().to_string();
  // Its named TLS listeners and its auth.http_auth.acl_req are served now.
  EXPECT_EQ(keys_of(example->config->unenforced_protections), std::vector<std::string>{});
}

}  // namespace
}  // namespace harbor::config
