#include <gtest/gtest.h>

#include "tools/broker_url.hpp"

using namespace harbor::tools;

TEST(BrokerUrl, Forms) {
  auto a = parse_broker_url("mqtt://localhost/a/b");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 1883);
  EXPECT_FALSE(a->username);
  EXPECT_FALSE(a->password);
  EXPECT_EQ(a->topic, "a/b");

  auto b = parse_broker_url("MQTT://ann:p:w@10.0.0.1:1999/sensors/#");
  ASSERT_TRUE(b) << b.error();
  EXPECT_EQ(b->host, "10.0.0.1");
  EXPECT_EQ(b->port, 1999);
  EXPECT_EQ(b->username, "ann");
  EXPECT_EQ(b->password, "p:w");  // the first ':' splits user and password
  EXPECT_EQ(b->topic, "sensors/#");

  auto c = parse_broker_url("mqtt://bob@[::1]:1884/t");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 1884);
  EXPECT_EQ(c->username, "bob");
  EXPECT_FALSE(c->password);

  auto d = parse_broker_url("mqtt://u:a@b@h/t");  // the last '@' ends the user information
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->password, "a@b");
  EXPECT_EQ(d->host, "h");
}

TEST(BrokerUrl, Errors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"http://h/t", "unsupported URL scheme (use mqtt://, mqtts://, ws:// or wss://)."},
      {"h/t", "unsupported URL scheme (use mqtt://, mqtts://, ws:// or wss://)."},
      {"mqtt://host", "Invalid URL for -L argument specified - topic missing."},
      {"mqtt://host/", "Invalid URL for -L argument specified - topic missing."},
      {"mqtt:///t", "Invalid URL for -L argument specified - host missing."},
      {"mqtt://u@:1883/t", "Invalid URL for -L argument specified - host missing."},
      {"mqtt://h:/t", "Invalid URL for -L argument specified - empty port."},
      {"mqtt://h:0/t", "Invalid URL for -L argument specified - bad port '0'."},
      {"mqtt://h:65536/t", "Invalid URL for -L argument specified - bad port '65536'."},
      {"mqtt://h:12x/t", "Invalid URL for -L argument specified - bad port '12x'."},
      {"mqtt://[::1/t", "Invalid URL for -L argument specified - unclosed '[' in host."},
  };
  for (const auto& [url, error] : cases) {
    auto r = parse_broker_url(url);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error(), error) << url;
  }
}

TEST(BrokerUrl, SchemesSetTransportAndDefaultPort) {
  struct Case {
    std::string url;
    uint16_t port;
    bool tls;
    bool websocket;
  };
  const std::vector<Case> cases = {{"mqtt://h/t", 1883, false, false},
                                   {"MQTTS://h/t", 8883, true, false},
                                   {"ws://h/t", 8083, false, true},
                                   {"wss://h:9/t", 9, true, true}};
  for (const auto& c : cases) {
    auto r = parse_broker_url(c.url);
    ASSERT_TRUE(r) << c.url << ": " << r.error();
    EXPECT_EQ(r->port, c.port) << c.url;
    EXPECT_EQ(r->tls, c.tls) << c.url;
    EXPECT_EQ(r->websocket, c.websocket) << c.url;
    EXPECT_EQ(r->host, "h") << c.url;
    EXPECT_EQ(r->topic, "t") << c.url;
  }
}
