// NanoMQ's named listeners (`listeners.<kind>.<name> { ... }`): reading, errors naming file,
// line and key, address clashes, the presence rule of the unnamed section, reload.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "load_helpers.hpp"

namespace harbor::config {
namespace {

using test_support::load_error;
using test_support::load_ok;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(NamedListeners, EveryKindInFileOrderWithItsOwnKeys) {
  Config c = load_ok(
      "listeners.tcp.b { bind = \"127.0.0.1:1885\" }\n"
      "listeners.tcp.a { bind = \"127.0.0.1:1884\", enabled = false }\n"
      "listeners.ws.w { bind = \"127.0.0.1:8084/ws\" }\n"
      "listeners.ssl.s {\n"
      "  bind = \"127.0.0.1:8884\"\n"
      "  certfile = c.pem, keyfile = k.pem, key_password = pw, cacertfile = ca.pem\n"
      "  verify_peer = true, fail_if_no_peer_cert = true\n"
      "}\n"
      "listeners.wss.x { bind = \"127.0.0.1:8087\" }\n");
  ASSERT_EQ(c.named_listeners.tcp.size(), 2u);
  EXPECT_EQ(c.named_listeners.tcp[0].name, "b");
  EXPECT_EQ(c.named_listeners.tcp[0].key, "listeners.tcp.b");
  EXPECT_TRUE(c.named_listeners.tcp[0].enabled);
  EXPECT_EQ(c.named_listeners.tcp[1].bind, "127.0.0.1:1884");
  EXPECT_FALSE(c.named_listeners.tcp[1].enabled);
  ASSERT_EQ(c.named_listeners.ws.size(), 1u);
  EXPECT_EQ(c.named_listeners.ws[0].bind, "127.0.0.1:8084");
  EXPECT_EQ(c.named_listeners.ws[0].path, "/ws");
  ASSERT_EQ(c.named_listeners.ssl.size(), 1u);
  const SslListener& tls = c.named_listeners.ssl[0].tls;
  EXPECT_EQ(tls.certfile, "c.pem");
  EXPECT_EQ(tls.keyfile, "k.pem");
  EXPECT_EQ(tls.key_password, "pw");
  EXPECT_EQ(tls.cacertfile, "ca.pem");
  EXPECT_TRUE(tls.verify_peer);
  EXPECT_TRUE(tls.fail_if_no_peer_cert);
  ASSERT_EQ(c.named_listeners.wss.size(), 1u);
  EXPECT_EQ(c.named_listeners.wss[0].path, "/mqtt");
  EXPECT_TRUE(c.named_listeners.wss[0].tls_from_ssl);
  // A section holding only named listeners does not switch its unnamed listener on.
  EXPECT_FALSE(c.ws.enabled);
  EXPECT_FALSE(c.ssl.enabled);
  EXPECT_FALSE(c.wss.enabled);
  EXPECT_TRUE(c.unimplemented_sections.empty());
  EXPECT_TRUE(c.unenforced_protections.empty());
  EXPECT_TRUE(contains(c.key_error("listeners.ssl.s.certfile", "x"), "t.conf:6: "));
  EXPECT_TRUE(contains(c.key_error("listeners.tcp.a.bind", "x"), "t.conf:2: "));
}

TEST(NamedListeners, UnnamedSectionWithKeysOfItsOwnIsStillPresent) {
  Config c = load_ok(
      "listeners.ssl { certfile = c.pem, keyfile = k.pem }\n"
      "listeners.ssl.s { bind = \"127.0.0.1:8884\", certfile = d.pem, keyfile = e.pem }\n"
      "listeners.ws {}\n");
  EXPECT_TRUE(c.ssl.enabled);
  EXPECT_EQ(c.ssl.certfile, "c.pem");
  EXPECT_EQ(c.named_listeners.ssl.at(0).tls.certfile, "d.pem");
  EXPECT_TRUE(c.ws.enabled);
}

TEST(NamedListeners, WssWithItsOwnCertificate) {
  Config c = load_ok(
      "listeners.wss.x { bind = \"127.0.0.1:8087/m\", certfile = c.pem, keyfile = k.pem,\n"
      "  verify_peer = true, cacertfile = ca.pem }\n");
  const NamedListener& x = c.named_listeners.wss.at(0);
  EXPECT_FALSE(x.tls_from_ssl);
  EXPECT_EQ(x.tls.certfile, "c.pem");
  EXPECT_TRUE(x.tls.verify_peer);
  EXPECT_EQ(x.path, "/m");
}

TEST(NamedListeners, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(load_error("listeners.tcp.a {\n  bnid = \"127.0.0.1:1\"\n}\n"),
            "t.conf:2: listeners.tcp.a.bnid: unknown key, did you mean listeners.tcp.a.bind?");
  EXPECT_TRUE(contains(load_error("listeners.tcp.a {\n  bind = nowhere\n}\n"),
                       "t.conf:2: listeners.tcp.a.bind: "));
  EXPECT_TRUE(contains(load_error("listeners.ssl.s {\n  bind = \"127.0.0.1:1\"\n"
                                  "  verify_peer = maybe\n  certfile = c, keyfile = k\n}\n"),
                       "t.conf:3: listeners.ssl.s.verify_peer: expected true or false"));
  // NanoMQ's certificate keys are ssl's: a named ws has none.
  EXPECT_TRUE(contains(load_error("listeners.ws.w {\n  bind = \"127.0.0.1:1\"\n"
                                  "  certfile = c\n}\n"),
                       "t.conf:3: listeners.ws.w.certfile: unknown key"));
  EXPECT_TRUE(contains(load_error("listeners.tcp.a {\n  enable = true\n}\n"),
                       "t.conf:1: listeners.tcp.a.bind: a named listener needs its address"));
  EXPECT_TRUE(contains(load_error("listeners.ssl.s {\n  bind = \"127.0.0.1:1\"\n}\n"),
                       "t.conf:1: listeners.ssl.s.certfile: a named TLS listener needs its own"));
  EXPECT_TRUE(
      contains(load_error("listeners.wss.x {\n  bind = \"127.0.0.1:1\"\n  verify_peer = true\n}\n"),
               "t.conf:1: listeners.wss.x.verify_peer: a named wss listener without certfile"));
  EXPECT_TRUE(contains(load_error("listeners.tcp.a = 5\n"), "listeners.tcp.a: unknown key"));
  // Switched off, a named ssl listener needs no certificate.
  Config off = load_ok("listeners.ssl.s { bind = \"127.0.0.1:1\", enable = false }\n");
  EXPECT_FALSE(off.named_listeners.ssl.at(0).enabled);
}

TEST(NamedListeners, TwoListenersOnOneAddressNameBothKeys) {
  EXPECT_EQ(load_error("listeners.tcp { bind = \"127.0.0.1:1884\" }\n"
                       "listeners.tcp.a {\n  bind = \"127.0.0.1:1884\"\n}\n"),
            "t.conf:3: listeners.tcp.a.bind: \"127.0.0.1:1884\" is also the address of "
            "listeners.tcp.bind (\"127.0.0.1:1884\", t.conf:1); two listeners cannot share an "
            "address");
  // The default listeners.tcp.bind, against a named ws one.
  EXPECT_TRUE(contains(load_error("listeners.ws.w { bind = \"127.0.0.1:1883/mqtt\" }\n"),
                       "listeners.ws.w.bind: \"127.0.0.1:1883\" is also the address of "
                       "listeners.tcp.bind (\"127.0.0.1:1883\", <defaults>)"));
  // A wildcard host takes the port on every address.
  EXPECT_TRUE(contains(load_error("listeners.tcp.a { bind = \"0.0.0.0:1990\" }\n"
                                  "listeners.tcp.b { bind = \"127.0.0.1:1990\" }\n"),
                       "listeners.tcp.b.bind: \"127.0.0.1:1990\" is also the address of "
                       "listeners.tcp.a.bind"));
  // Port 0 (any free port) and switched-off listeners never clash.
  load_ok(
      "listeners.tcp { bind = \"127.0.0.1:0\" }\nlisteners.tcp.a { bind = \"127.0.0.1:0\" }\n"
      "listeners.tcp.b { bind = \"127.0.0.1:1883\", enable = false }\n");
  load_ok(
      "listeners.tcp.a { bind = \"127.0.0.1:1990\" }\n"
      "listeners.tcp.b { bind = \"127.0.0.2:1990\" }\n");
}

TEST(NamedListeners, FromTheCommandLine) {
  auto r = load(LoadOptions{.path = "",
                            .overrides = {"listeners.tcp.extra.bind=127.0.0.1:1999"},
                            .read_environment = false});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->config->named_listeners.tcp.size(), 1u);
  EXPECT_EQ(r->config->named_listeners.tcp[0].bind, "127.0.0.1:1999");
}

TEST(NamedListeners, ReloadKeepsTheSetAndTakesCertificates) {
  auto running = load_string(
      "listeners.tcp.a { bind = \"127.0.0.1:1884\" }\n"
      "listeners.ssl.s { bind = \"127.0.0.1:8884\", certfile = c.pem, keyfile = k.pem }\n",
      "old.conf");
  auto fresh = load_string(
      "listeners.tcp.b { bind = \"127.0.0.1:1885\" }\n"
      "listeners.ssl.s {\n  bind = \"127.0.0.1:8885\"\n  certfile = c2.pem, keyfile = k.pem\n}\n",
      "new.conf");
  ASSERT_TRUE(running && fresh);
  auto merged = merge_for_reload(*running->config, *fresh->config);
  ASSERT_EQ(merged->named_listeners.tcp.size(), 1u);
  EXPECT_EQ(merged->named_listeners.tcp[0].key, "listeners.tcp.a");
  const NamedListener& s = merged->named_listeners.ssl.at(0);
  EXPECT_EQ(s.bind, "127.0.0.1:8884");
  EXPECT_EQ(s.tls.certfile, "c2.pem");
  EXPECT_TRUE(contains(merged->key_error("listeners.ssl.s.certfile", "x"), "new.conf:4: "));
  EXPECT_TRUE(contains(merged->key_error("listeners.ssl.s.bind", "x"), "old.conf:2: "));
  EXPECT_TRUE(contains(merged->key_error("listeners.tcp.a.bind", "x"), "old.conf:1: "));
  auto applied = diff(*running->config, *merged);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0], (KeyChange{"listeners.ssl.s.certfile", "c.pem", "c2.pem", true}));
  auto pending = diff(*merged, *fresh->config);
  EXPECT_EQ(pending, (std::vector<KeyChange>{
                         {"listeners.tcp.a", "tcp 127.0.0.1:1884", "removed", false},
                         {"listeners.ssl.s", "ssl 127.0.0.1:8884", "ssl 127.0.0.1:8885", false},
                         {"listeners.tcp.b", "none", "tcp 127.0.0.1:1885", false}}));
}

}  // namespace
}  // namespace harbor::config
