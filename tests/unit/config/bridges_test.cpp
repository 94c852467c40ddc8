// Reading NanoMQ's MQTT bridge configuration (`bridges.mqtt.<name>`, `bridges.mqtt.cache`):
// NanoMQ's own files, every refused value with its file, line and key, the keys accepted
// but not acted on, and reload treating the bridges as needing a restart.
#include "config/bridges.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.hpp"

namespace harbor::config {
namespace {

using namespace std::chrono_literals;

const std::string kCompat = HARBOR_SHARED_DIR "/compat/nanomq/";

LoadResult load_ok(const std::string& text) {
  auto r = load_string(text, "t.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  if (!r) return LoadResult{std::make_shared<Config>(), {}};
  return *r;
}

std::string load_error(const std::string& text) {
  auto r = load_string(text, "t.conf");
  if (r) return "(no error)";
  return r.error().to_string();
}

size_t count_warnings(const std::vector<std::string>& warnings, const std::string& needle) {
  return static_cast<size_t>(std::count_if(warnings.begin(), warnings.end(), [&](const auto& w) {
    return w.find(needle) != std::string::npos;
  }));
}

std::string all(const std::vector<std::string>& warnings) {
  std::string out;
  for (const auto& w : warnings) out += w + "\n";
  return out;
}

// A bridge `b` whose body is `body`, on lines 2.. of t.conf.
std::string bridge(const std::string& body) {
  return "bridges.mqtt.b {\n  server = \"mqtt-tcp://h:1883\"\n" + body + "}\n";
}

const char* const kQuicKeys[] = {"quic_keepalive",         "quic_idle_timeout",
                                 "quic_discon_timeout",    "quic_handshake_timeout",
                                 "quic_send_idle_timeout", "quic_initial_rtt_ms",
                                 "quic_max_ack_delay_ms",  "quic_multi_stream",
                                 "quic_qos_priority",      "quic_0rtt"};

TEST(BridgesCompat, NanoMqBridgeConf) {
  const std::string file = kCompat + "nanomq_bridge.conf";
  auto r = load_file(file);
  ASSERT_TRUE(r) << r.error().to_string();
  const Config& c = *r->config;
  EXPECT_TRUE(c.unimplemented_sections.empty());
  ASSERT_EQ(c.bridges.size(), 1u);
  const BridgeSettings& b = c.bridges[0];
  EXPECT_EQ(b.name, "emqx1");
  EXPECT_TRUE(b.enabled);
  EXPECT_EQ(b.server, (BridgeServer{"127.0.0.1", 1883}));
  EXPECT_EQ(b.proto_ver, 4);
  EXPECT_EQ(b.clientid, "");  // commented out in the file
  EXPECT_EQ(b.keepalive, 60s);
  EXPECT_EQ(b.backoff_max, 60s);
  EXPECT_FALSE(b.clean_start);
  EXPECT_EQ(b.username, "username");
  EXPECT_EQ(b.password, "passwd");
  EXPECT_EQ(b.conn_properties.maximum_packet_size, 1024u);
  EXPECT_EQ(b.conn_properties.receive_maximum, 65535);
  EXPECT_EQ(b.conn_properties.topic_alias_maximum, 0);
  EXPECT_EQ(b.conn_properties.request_problem_information, 1);
  EXPECT_EQ(b.conn_properties.request_response_information, 0);
  EXPECT_EQ(b.conn_properties.session_expiry_interval, 0u);
  EXPECT_EQ(b.conn_properties.user_properties, (std::vector<std::pair<std::string, std::string>>{
                                                   {"key1", "value1"}, {"key2", "value2"}}));
  ASSERT_TRUE(b.will);
  EXPECT_EQ(*b.will, (BridgeWill{"will_topic", "will_message", 1, false}));
  ASSERT_EQ(b.forwards.size(), 2u);
  EXPECT_EQ(b.forwards[0], (BridgeForward{.local_topic = "topic1", .remote_topic = "fwd/topic1"}));
  EXPECT_EQ(b.forwards[1], (BridgeForward{.local_topic = "topic2", .remote_topic = "fwd/topic2"}));
  ASSERT_EQ(b.subscriptions.size(), 2u);
  EXPECT_EQ(b.subscriptions[0],
            (BridgeSubscription{.remote_topic = "cmd/topic3", .local_topic = "topic3", .qos = 1}));
  EXPECT_EQ(b.subscriptions[1],
            (BridgeSubscription{.remote_topic = "cmd/topic4", .local_topic = "topic4", .qos = 2}));
  // ["mqtt-quic://127.1:14567", "mqtt-tcp://127.1:1883"]: the QUIC one is skipped.
  EXPECT_EQ(b.hybrid_servers, (std::vector<BridgeServer>{{"127.1", 1883}}));
  EXPECT_EQ(b.max_parallel_processes, 2u);
  EXPECT_EQ(b.max_send_queue_len, 32u);
  EXPECT_EQ(b.max_recv_queue_len, 128u);
  EXPECT_EQ(c.bridge_cache.disk_cache_size, 102400u);
  EXPECT_EQ(c.bridge_cache.flush_mem_threshold, 100u);
  EXPECT_EQ(c.bridge_cache.resend_interval, 5000ms);

  const auto& w = r->warnings;
  EXPECT_EQ(count_warnings(w, file + ":253: bridges.mqtt.emqx1.quic_keepalive: accepted, not "
                                     "acted on (QUIC transport)"),
            1u)
      << all(w);
  for (const char* key : kQuicKeys) {
    EXPECT_EQ(count_warnings(w, std::string(": bridges.mqtt.emqx1.") + key +
                                    ": accepted, not acted on (QUIC transport)"),
              1u)
        << key << "\n"
        << all(w);
  }
  for (const char* key : {"sub_properties", "hybrid_bridging", "will.properties",
                          "max_parallel_processes", "max_send_queue_len", "max_recv_queue_len"}) {
    EXPECT_EQ(count_warnings(
                  w, std::string(": bridges.mqtt.emqx1.") + key + ": accepted, not acted on ("),
              1u)
        << key << "\n"
        << all(w);
  }
  EXPECT_EQ(count_warnings(w,
                           ":358: bridges.mqtt.emqx1.hybrid_servers: skipped "
                           "\"mqtt-quic://127.1:14567\""),
            1u)
      << all(w);
  // proto_ver = 4 with MQTT 5 CONNECT properties.
  EXPECT_EQ(count_warnings(w, ":56: bridges.mqtt.emqx1.conn_properties: accepted, not acted on"),
            1u)
      << all(w);
  EXPECT_EQ(count_warnings(w, ": bridges.mqtt.cache.resend_interval: accepted, not acted on ("), 1u)
      << all(w);
  EXPECT_EQ(w.size(), 19u) << all(w);
}

TEST(BridgesCompat, NanoMqExampleConf) {
  auto r = load_file(kCompat + "nanomq_example.conf");
  ASSERT_TRUE(r) << r.error().to_string();
  const Config& c = *r->config;
  ASSERT_EQ(c.bridges.size(), 1u);
  const BridgeSettings& b = c.bridges[0];
  EXPECT_EQ(b.name, "emqx1");
  EXPECT_EQ(b.server, (BridgeServer{"127.0.0.1", 1883}));
  EXPECT_EQ(b.proto_ver, 5);
  EXPECT_EQ(b.clientid, "bridge_client");
  EXPECT_EQ(b.keepalive, 60s);
  EXPECT_EQ(b.username, "username");
  EXPECT_EQ(b.password, "passwd");
  ASSERT_EQ(b.forwards.size(), 2u);
  EXPECT_EQ(b.forwards[0], (BridgeForward{.local_topic = "topic1", .remote_topic = "fwd/topic1"}));
  EXPECT_EQ(b.forwards[1], (BridgeForward{.local_topic = "topic2", .remote_topic = "fwd/topic2"}));
  ASSERT_EQ(b.subscriptions.size(), 2u);
  EXPECT_EQ(b.subscriptions[0], (BridgeSubscription{.remote_topic = "cmd/topic3",
                                                    .local_topic = "topic3",
                                                    .qos = 1,
                                                    .retain_as_published = true,
                                                    .retain_handling = 2}));
  EXPECT_EQ(b.subscriptions[1],
            (BridgeSubscription{.remote_topic = "cmd/topic4", .local_topic = "topic4", .qos = 2}));
  EXPECT_EQ(b.hybrid_servers, (std::vector<BridgeServer>{{"127.1", 1883}}));
  EXPECT_EQ(b.resend_interval, 5000ms);
  EXPECT_EQ(b.resend_wait, 3000ms);
  EXPECT_EQ(b.cancel_timeout, 8000ms);
  EXPECT_EQ(c.bridge_cache.disk_cache_size, 102400u);
  EXPECT_EQ(c.bridge_cache.flush_mem_threshold, 100u);

  const auto& w = r->warnings;
  for (const char* key : kQuicKeys) {
    EXPECT_EQ(count_warnings(w, std::string(": bridges.mqtt.emqx1.") + key +
                                    ": accepted, not acted on (QUIC transport)"),
              1u)
        << key << "\n"
        << all(w);
  }
  for (const char* key : {"tcp", "retry_qos_0", "sub_properties", "hybrid_bridging"}) {
    EXPECT_EQ(count_warnings(w, std::string(": bridges.mqtt.emqx1.") + key + ": accepted, not"), 1u)
        << key << "\n"
        << all(w);
  }
  EXPECT_EQ(count_warnings(w, "bridges.mqtt.emqx1.transparent"), 0u);      // false
  EXPECT_EQ(count_warnings(w, "bridges.mqtt.emqx1.conn_properties"), 0u);  // proto_ver 5
  // The other bridge types stay NanoMQ sections not implemented yet.
  for (const char* section : {"bridges.aws", "bridges.nng"}) {
    EXPECT_EQ(std::count(c.unimplemented_sections.begin(), c.unimplemented_sections.end(), section),
              1)
        << section;
    EXPECT_EQ(
        count_warnings(w, std::string(": ") + section + ": NanoMQ section not implemented yet ("),
        1u)
        << section;
  }
  for (const char* section : {"bridges", "bridges.mqtt"}) {
    EXPECT_EQ(std::count(c.unimplemented_sections.begin(), c.unimplemented_sections.end(), section),
              0)
        << section;
  }
}

TEST(Bridges, AllSpellingsOfTheSectionArriveAsNestedObjects) {
  for (const std::string text : {
           "bridges.mqtt.b { server = \"mqtt-tcp://h:1\" }\n",
           "bridges.mqtt.b = { server = \"mqtt-tcp://h:1\" }\n",
           "bridges { mqtt { b { server = \"mqtt-tcp://h:1\" } } }\n",
           "bridges.mqtt { b { server = \"mqtt-tcp://h:1\" } }\n",
           "bridges.mqtt.b.server = \"mqtt-tcp://h:1\"\n",
       }) {
    auto r = load_ok(text);
    ASSERT_EQ(r.config->bridges.size(), 1u) << text;
    EXPECT_EQ(r.config->bridges[0].name, "b");
    EXPECT_EQ(r.config->bridges[0].server, (BridgeServer{"h", 1})) << text;
    EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
  }
}

TEST(Bridges, KeptInFileOrderAndMergedByName) {
  auto r = load_ok(
      "bridges.mqtt.z { server = \"mqtt-tcp://z\" }\n"
      "bridges.mqtt.cache { disk_cache_size = 0 }\n"
      "bridges.mqtt.a { server = \"tcp://a:1884\" }\n"
      "bridges.mqtt.z { keepalive = 30 }\n");
  const auto& bridges = r.config->bridges;
  ASSERT_EQ(bridges.size(), 2u);
  EXPECT_EQ(bridges[0].name, "z");
  EXPECT_EQ(bridges[0].server, (BridgeServer{"z", 1883}));
  EXPECT_EQ(bridges[0].keepalive, 30s);  // a bare number is seconds
  EXPECT_EQ(bridges[1].name, "a");
  EXPECT_EQ(bridges[1].server, (BridgeServer{"a", 1884}));
  EXPECT_EQ(r.config->bridge_cache.disk_cache_size, 0u);
}

TEST(Bridges, DefaultsOfABareBridge) {
  auto r = load_ok("bridges.mqtt.b { server = \"mqtt-tcp://h\" }\n");
  BridgeSettings expected;
  expected.name = "b";
  expected.server = BridgeServer{"h", 1883};
  ASSERT_EQ(r.config->bridges.size(), 1u);
  EXPECT_EQ(r.config->bridges[0], expected);
  EXPECT_EQ(r.config->bridge_cache, BridgeCacheSettings{});
  EXPECT_TRUE(defaults()->bridges.empty());
}

TEST(Bridges, EveryKeyActedOn) {
  auto r = load_ok(bridge(
      "  enable = false\n"
      "  proto_ver = 5\n"
      "  clientid = c1\n"
      "  keepalive = 2m\n"
      "  clean_start = true\n"
      "  username = \"u\"\n"
      "  password = 123\n"
      "  conn_properties { request_problem_information = 0, request_response_information = 1,\n"
      "                    user_properties { a = b } }\n"
      "  will { topic = \"w/t\", payload = bye, qos = 2, retain = 1 }\n"
      "  forwards = [{ local_topic = \"a/+/#\", remote_topic = \"\", prefix = \"p/\", suffix = "
      "\"/s\", qos = 1, retain = 2 },\n"
      "              { local_topic = \"#\", retain = true }, { local_topic = x, retain = 0 }]\n"
      "  subscription = [{ remote_topic = \"+\", nolocal = true, retain_as_published = false,\n"
      "                    retain_handling = 1 }, { remote_topic = \"$share/g/c/#\", no_local = 1 "
      "}]\n"
      "  backoff_max = 500ms\n"
      "  hybrid_servers = [\"mqtt-tcp://[::1]:1885\", \"tcp://10.0.0.2\"]\n"
      "  max_parallel_processes = 4, max_send_queue_len = 5, max_recv_queue_len = 6\n"
      "  resend_interval = 250, resend_wait = 2s, cancel_timeout = 100\n"
      "  max_inflight = 65535\n"));
  // Read (their values are kept below), and each named once as not acted on.
  EXPECT_EQ(r.warnings.size(), 5u) << all(r.warnings);
  for (const char* key : {"max_parallel_processes", "max_send_queue_len", "max_recv_queue_len",
                          "resend_wait", "cancel_timeout"}) {
    EXPECT_EQ(count_warnings(r.warnings,
                             std::string(": bridges.mqtt.b.") + key + ": accepted, not acted on ("),
              1u)
        << key << "\n"
        << all(r.warnings);
  }
  ASSERT_EQ(r.config->bridges.size(), 1u);
  const BridgeSettings& b = r.config->bridges[0];
  EXPECT_FALSE(b.enabled);
  EXPECT_EQ(b.proto_ver, 5);
  EXPECT_EQ(b.clientid, "c1");
  EXPECT_EQ(b.keepalive, 120s);
  EXPECT_TRUE(b.clean_start);
  EXPECT_EQ(b.username, "u");
  EXPECT_EQ(b.password, "123");
  EXPECT_EQ(b.conn_properties.request_problem_information, 0);
  EXPECT_EQ(b.conn_properties.request_response_information, 1);
  EXPECT_FALSE(b.conn_properties.receive_maximum);
  EXPECT_EQ(b.conn_properties.user_properties,
            (std::vector<std::pair<std::string, std::string>>{{"a", "b"}}));
  EXPECT_EQ(b.will, (BridgeWill{"w/t", "bye", 2, true}));
  ASSERT_EQ(b.forwards.size(), 3u);
  EXPECT_EQ(b.forwards[0], (BridgeForward{.local_topic = "a/+/#",
                                          .prefix = "p/",
                                          .suffix = "/s",
                                          .qos = 1,
                                          .retain = std::nullopt}));
  EXPECT_EQ(b.forwards[1].retain, true);
  EXPECT_EQ(b.forwards[2].retain, false);
  EXPECT_FALSE(b.forwards[2].qos);
  ASSERT_EQ(b.subscriptions.size(), 2u);
  EXPECT_EQ(b.subscriptions[0], (BridgeSubscription{.remote_topic = "+",
                                                    .qos = 0,  // left out: 0
                                                    .no_local = true,
                                                    .retain_handling = 1}));
  EXPECT_TRUE(b.subscriptions[1].no_local);
  EXPECT_EQ(b.backoff_max, 500ms);
  EXPECT_EQ(b.hybrid_servers, (std::vector<BridgeServer>{{"::1", 1885}, {"10.0.0.2", 1883}}));
  EXPECT_EQ(b.max_parallel_processes, 4u);
  EXPECT_EQ(b.max_send_queue_len, 5u);
  EXPECT_EQ(b.max_recv_queue_len, 6u);
  EXPECT_EQ(b.resend_interval, 250ms);  // a bare number is milliseconds, as NanoMQ
  EXPECT_EQ(b.resend_wait, 2s);
  EXPECT_EQ(b.cancel_timeout, 100ms);
  EXPECT_EQ(b.max_inflight, 65535u);
}

TEST(Bridges, ServerForms) {
  auto server_of = [](const std::string& server) {
    auto r = load_ok("bridges.mqtt.b { server = \"" + server + "\" }\n");
    return r.config->bridges.empty() ? BridgeServer{} : r.config->bridges[0].server;
  };
  EXPECT_EQ(server_of("mqtt-tcp://127.1:1884"), (BridgeServer{"127.1", 1884}));
  EXPECT_EQ(server_of("MQTT-TCP://Broker.Example:1"), (BridgeServer{"Broker.Example", 1}));
  EXPECT_EQ(server_of("tcp://[fe80::1]"), (BridgeServer{"fe80::1", 1883}));
  EXPECT_EQ(server_of("tcp://h:65535"), (BridgeServer{"h", 65535}));
}

TEST(BridgeErrors, QuicServers) {
  EXPECT_EQ(load_error("bridges.mqtt.b { server = \"mqtt-quic://h:14567\" }\n"),
            "t.conf:1: bridges.mqtt.b.server: QUIC bridges are not supported; use mqtt-tcp:// or "
            "tls+mqtt-tcp://");
  EXPECT_EQ(load_error("bridges.mqtt.b { server = \"tls+mqtt-quic://h:14567\" }\n"),
            "t.conf:1: bridges.mqtt.b.server: QUIC bridges are not supported; use mqtt-tcp:// or "
            "tls+mqtt-tcp://");
}

TEST(BridgesTls, ServerForms) {
  auto server_of = [](const std::string& server) {
    auto r = load_ok("bridges.mqtt.b { server = \"" + server + "\" }\n");
    return r.config->bridges.empty() ? BridgeServer{} : r.config->bridges[0].server;
  };
  EXPECT_EQ(server_of("tls+mqtt-tcp://broker.example:8884"),
            (BridgeServer{"broker.example", 8884, true}));
  EXPECT_EQ(server_of("mqtts://h:8883"), (BridgeServer{"h", 8883, true}));
  // The port is 8883 when left out, as 1883 is for mqtt-tcp://.
  EXPECT_EQ(server_of("mqtts://h"), (BridgeServer{"h", 8883, true}));
  EXPECT_EQ(server_of("TLS+MQTT-TCP://127.0.0.1"), (BridgeServer{"127.0.0.1", 8883, true}));
  EXPECT_EQ(server_of("mqtts://[::1]"), (BridgeServer{"::1", 8883, true}));
  EXPECT_EQ(server_of("tls+tcp://h:1"), (BridgeServer{"h", 1, true}));
  EXPECT_EQ(server_of("ssl://h"), (BridgeServer{"h", 8883, true}));
  EXPECT_EQ(server_of("mqtt-tcp://h"), (BridgeServer{"h", 1883, false}));
  EXPECT_EQ(load_error("bridges.mqtt.b { server = \"mqtts://h:\" }\n"),
            "t.conf:1: bridges.mqtt.b.server: expected a port after ':', got \"mqtts://h:\"");
}

TEST(BridgesTls, NoSslBlockMeansTheSystemStoreAndVerification) {
  auto r = load_ok("bridges.mqtt.b { server = \"mqtts://h\" }\n");
  ASSERT_EQ(r.config->bridges.size(), 1u);
  EXPECT_EQ(r.config->bridges[0].ssl, BridgeTlsSettings{});
  EXPECT_TRUE(r.config->bridges[0].ssl.verify_peer);
  EXPECT_TRUE(r.config->bridges[0].ssl.cacertfile.empty());
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
}

TEST(BridgesTls, NanoMqSslBlock) {
  // NanoMQ's keys, as its nanomq_bridge.conf and nanomq_example.conf spell them.
  auto r = load_ok(
      "bridges.mqtt.emqx1 {\n"
      "  server = \"tls+mqtt-tcp://broker.example:8883\"\n"
      "  ssl {\n"
      "    key_password = \"yourpass\"\n"
      "    keyfile = \"../etc/certs/key.pem\"\n"
      "    certfile = \"../etc/certs/cert.pem\"\n"
      "    cacertfile = \"../etc/certs/cacert.pem\"\n"
      "    verify_peer = true\n"
      "    enable = true\n"
      "  }\n"
      "}\n");
  ASSERT_EQ(r.config->bridges.size(), 1u);
  const BridgeSettings& b = r.config->bridges[0];
  EXPECT_EQ(b.server, (BridgeServer{"broker.example", 8883, true}));
  BridgeTlsSettings expected;
  expected.key_password = "yourpass";
  expected.keyfile = "../etc/certs/key.pem";
  expected.certfile = "../etc/certs/cert.pem";
  expected.cacertfile = "../etc/certs/cacert.pem";
  expected.verify_peer = true;
  EXPECT_EQ(b.ssl, expected);
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
  // The broker's errors about the files (read at start) name these lines.
  const Config& c = *r.config;
  EXPECT_EQ(c.key_error("bridges.mqtt.emqx1.ssl.keyfile", "x"),
            "t.conf:5: bridges.mqtt.emqx1.ssl.keyfile: x");
  EXPECT_EQ(c.key_error("bridges.mqtt.emqx1.ssl.cacertfile", "x"),
            "t.conf:7: bridges.mqtt.emqx1.ssl.cacertfile: x");
  EXPECT_EQ(c.key_error("bridges.mqtt.emqx1.ssl.key_password", "x"),
            "t.conf:4: bridges.mqtt.emqx1.ssl.key_password: x");
  EXPECT_NE(describe_bridges(c).find("emqx1 (broker.example:8883, TLS)"), std::string::npos)
      << describe_bridges(c);
}

TEST(BridgesTls, HybridServersMixSchemes) {
  auto r = load_ok(
      "bridges.mqtt.b {\n"
      "  server = \"mqtt-tcp://a\"\n"
      "  hybrid_servers = [\"mqtts://b\", \"tcp://c:1884\", \"tls+mqtt-tcp://d:9000\"]\n"
      "  ssl { cacertfile = \"ca.pem\" }\n"
      "}\n");
  ASSERT_EQ(r.config->bridges.size(), 1u);
  const BridgeSettings& b = r.config->bridges[0];
  EXPECT_EQ(b.server, (BridgeServer{"a", 1883, false}));
  EXPECT_EQ(b.hybrid_servers,
            (std::vector<BridgeServer>{{"b", 8883, true}, {"c", 1884, false}, {"d", 9000, true}}));
  EXPECT_EQ(b.ssl.cacertfile, "ca.pem");
}

TEST(BridgesTls, VerifyPeerFalseWarns) {
  auto r = load_ok(
      "bridges.mqtt.b {\n"
      "  server = \"mqtts://h\"\n"
      "  ssl {\n"
      "    verify_peer = false\n"
      "    fail_if_no_peer_cert = true\n"
      "  }\n"
      "}\n");
  ASSERT_EQ(r.config->bridges.size(), 1u);
  EXPECT_FALSE(r.config->bridges[0].ssl.verify_peer);
  EXPECT_EQ(count_warnings(r.warnings,
                           "t.conf:4: bridges.mqtt.b.ssl.verify_peer: the remote's certificate is "
                           "not verified"),
            1u)
      << all(r.warnings);
  EXPECT_EQ(count_warnings(r.warnings,
                           "t.conf:5: bridges.mqtt.b.ssl.fail_if_no_peer_cert: accepted, not "
                           "acted on (a server's setting; a bridge is the client)"),
            1u)
      << all(r.warnings);
  EXPECT_EQ(r.warnings.size(), 2u) << all(r.warnings);
}

TEST(BridgesTls, DisabledSslBlockBesideAPlainServerIsQuiet) {
  auto r = load_ok(bridge("  ssl {\n    enable = false\n    keyfile = \"/k.pem\"\n  }\n"));
  ASSERT_EQ(r.config->bridges.size(), 1u);
  EXPECT_EQ(r.config->bridges[0].ssl, BridgeTlsSettings{});
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
}

TEST(BridgeErrors, SslBlock) {
  // An enabled ssl block needs a TLS server to apply to.
  EXPECT_EQ(load_error(bridge("  ssl { cacertfile = \"ca.pem\" }\n")),
            "t.conf:3: bridges.mqtt.b.ssl: TLS settings, but no server of the bridge is a TLS "
            "one: use tls+mqtt-tcp://host:port (or mqtts://) in server or hybrid_servers, or "
            "set ssl.enable = false");
  // A TLS server with the block switched off.
  EXPECT_EQ(load_error("bridges.mqtt.b {\n"
                       "  server = \"mqtt-tcp://a\"\n"
                       "  hybrid_servers = [\"mqtts://h:8884\"]\n"
                       "  ssl {\n    enable = false\n  }\n"
                       "}\n"),
            "t.conf:5: bridges.mqtt.b.ssl.enable: is false, but the bridge dials h:8884 over TLS; "
            "remove it or use mqtt-tcp://");
  auto tls_bridge = [](const std::string& ssl_body) {
    return "bridges.mqtt.b {\n  server = \"mqtts://h\"\n  ssl {\n" + ssl_body + "  }\n}\n";
  };
  EXPECT_EQ(load_error(tls_bridge("    certfile = \"c.pem\"\n")),
            "t.conf:4: bridges.mqtt.b.ssl.keyfile: required with certfile: the certificate's "
            "private key (PEM)");
  EXPECT_EQ(load_error(tls_bridge("    keyfile = \"k.pem\"\n")),
            "t.conf:4: bridges.mqtt.b.ssl.certfile: required with keyfile: the certificate that "
            "goes with the key (PEM)");
  EXPECT_EQ(load_error(tls_bridge("    key_password = \"p\"\n")),
            "t.conf:4: bridges.mqtt.b.ssl.key_password: given without keyfile: there is no key "
            "to decrypt");
  EXPECT_EQ(load_error(tls_bridge("    cacert = \"ca.pem\"\n")),
            "t.conf:4: bridges.mqtt.b.ssl.cacert: unknown key, did you mean "
            "bridges.mqtt.b.ssl.cacertfile?");
  EXPECT_EQ(load_error(tls_bridge("    verify_peer = maybe\n")).substr(0, 42),
            "t.conf:4: bridges.mqtt.b.ssl.verify_peer: ");
  EXPECT_EQ(load_error("bridges.mqtt.b {\n  server = \"mqtts://h\"\n  ssl = \"on\"\n}\n"),
            "t.conf:3: bridges.mqtt.b.ssl: expected { cacertfile = \"ca.pem\", ... }, got \"on\"");
}

TEST(BridgeErrors, BadServers) {
  auto error_of = [](const std::string& server) {
    return load_error("bridges.mqtt.b {\n  server = " + server + "\n}\n");
  };
  EXPECT_EQ(
      error_of("\"ws://h:8083\""),
      "t.conf:2: bridges.mqtt.b.server: unknown scheme \"ws://\"; use mqtt-tcp://host:port or "
      "tls+mqtt-tcp://host:port, "
      "got \"ws://h:8083\"");
  EXPECT_EQ(error_of("\"127.0.0.1:1883\""),
            "t.conf:2: bridges.mqtt.b.server: expected mqtt-tcp://host:port, got "
            "\"127.0.0.1:1883\"");
  EXPECT_NE(error_of("\"tcp://h:0\"")
                .find("t.conf:2: bridges.mqtt.b.server: the port must be "
                      "1-65535"),
            std::string::npos);
  EXPECT_NE(error_of("\"tcp://h:70000\"").find("the port must be 1-65535"), std::string::npos);
  EXPECT_NE(error_of("\"tcp://:1883\"").find("expected a host"), std::string::npos);
  EXPECT_NE(error_of("\"tcp://h:1883/x\"").find("and nothing more"), std::string::npos);
  EXPECT_NE(error_of("\"tcp://::1:1883\"").find("needs brackets"), std::string::npos);
  EXPECT_NE(error_of("[a]").find("t.conf:2: bridges.mqtt.b.server: expected"), std::string::npos);
}

TEST(BridgeErrors, RequiredKeys) {
  EXPECT_EQ(load_error("bridges.mqtt.b {\n  proto_ver = 4\n}\n"),
            "t.conf:1: bridges.mqtt.b.server: required: the remote broker, e.g. server = "
            "\"mqtt-tcp://127.0.0.1:1883\"");
  EXPECT_EQ(load_error(bridge("  forwards = [\n    { local_topic = a }\n    { remote_topic = b }\n"
                              "  ]\n")),
            "t.conf:5: bridges.mqtt.b.forwards[1].local_topic: required: the local topic filter "
            "to forward, e.g. local_topic = \"sensors/#\"");
  EXPECT_EQ(load_error(bridge("  subscription = [{ qos = 1 }]\n")),
            "t.conf:3: bridges.mqtt.b.subscription[0].remote_topic: required: the topic filter "
            "to subscribe to on the remote, e.g. remote_topic = \"cmd/#\"");
  EXPECT_EQ(load_error(bridge("  will { payload = x }\n")),
            "t.conf:3: bridges.mqtt.b.will.topic: required when a will is given");
}

TEST(BridgeErrors, ProtoVer) {
  EXPECT_EQ(load_error(bridge("  proto_ver = 3\n")),
            "t.conf:3: bridges.mqtt.b.proto_ver: MQTT 3.1 bridges are not supported; use 4 or 5");
  EXPECT_EQ(load_error(bridge("  proto_ver = 6\n")),
            "t.conf:3: bridges.mqtt.b.proto_ver: must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0), got 6");
}

TEST(BridgeErrors, UnknownKeysSuggestTheClosest) {
  EXPECT_EQ(load_error(bridge("  forwards = [\n    {\n      local_topic = a\n      qoss = 1\n"
                              "    }\n  ]\n")),
            "t.conf:6: bridges.mqtt.b.forwards[0].qoss: unknown key, did you mean "
            "bridges.mqtt.b.forwards[0].qos?");
  EXPECT_EQ(load_error(bridge("  keep_alive = 10\n")),
            "t.conf:3: bridges.mqtt.b.keep_alive: unknown key, did you mean "
            "bridges.mqtt.b.keepalive?");
  EXPECT_EQ(load_error(bridge("  subscription = [{ remote_topic = a, retain_handlin = 1 }]\n")),
            "t.conf:3: bridges.mqtt.b.subscription[0].retain_handlin: unknown key, did you mean "
            "bridges.mqtt.b.subscription[0].retain_handling?");
  EXPECT_EQ(load_error(bridge("  will { topic = t, retian = 1 }\n")),
            "t.conf:3: bridges.mqtt.b.will.retian: unknown key, did you mean "
            "bridges.mqtt.b.will.retain?");
  EXPECT_EQ(load_error(bridge("  conn_properties { receive_maximun = 1 }\n")),
            "t.conf:3: bridges.mqtt.b.conn_properties.receive_maximun: unknown key, did you mean "
            "bridges.mqtt.b.conn_properties.receive_maximum?");
  EXPECT_EQ(load_error("bridges.mqtt.cache {\n  flush_mem_treshold = 1\n}\n"),
            "t.conf:2: bridges.mqtt.cache.flush_mem_treshold: unknown key, did you mean "
            "bridges.mqtt.cache.flush_mem_threshold?");
}

TEST(BridgeErrors, QosAndRanges) {
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = a, qos = 3 }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].qos: must be between 0 and 2, got 3");
  EXPECT_EQ(load_error(bridge("  subscription = [{ remote_topic = a, qos = 5 }]\n")),
            "t.conf:3: bridges.mqtt.b.subscription[0].qos: must be between 0 and 2, got 5");
  EXPECT_EQ(load_error(bridge("  will { topic = t, qos = one }\n")),
            "t.conf:3: bridges.mqtt.b.will.qos: expected a whole number, got \"one\"");
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = a, retain = 3 }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].retain: expected 0, 1, 2 (keep) or true/false, "
            "got \"3\"");
  EXPECT_EQ(load_error(bridge("  max_inflight = 65536\n")),
            "t.conf:3: bridges.mqtt.b.max_inflight: must be between 0 and 65535, got 65536");
  EXPECT_EQ(load_error(bridge("  max_send_queue_len = 0\n")),
            "t.conf:3: bridges.mqtt.b.max_send_queue_len: must be between 1 and 4294967295, got 0");
  EXPECT_EQ(load_error(bridge("  keepalive = 1500ms\n")),
            "t.conf:3: bridges.mqtt.b.keepalive: must be whole seconds (MQTT Keep Alive counts "
            "seconds), got 1500ms");
  EXPECT_EQ(load_error(bridge("  keepalive = 65536\n")),
            "t.conf:3: bridges.mqtt.b.keepalive: must be between 0ms and 65535000ms, got "
            "65536000ms");
  EXPECT_EQ(load_error(bridge("  clean_start = maybe\n")),
            "t.conf:3: bridges.mqtt.b.clean_start: expected true or false (or 1/0), got "
            "\"maybe\"");
  EXPECT_EQ(load_error(bridge("  conn_properties { receive_maximum = 0 }\n")),
            "t.conf:3: bridges.mqtt.b.conn_properties.receive_maximum: must be between 1 and "
            "65535, got 0");
  EXPECT_EQ(load_error(bridge("  conn_properties {\n    request_problem_infomation = 1\n"
                              "    request_problem_information = 1\n  }\n")),
            "t.conf:5: bridges.mqtt.b.conn_properties.request_problem_information: set twice "
            "(also as bridges.mqtt.b.conn_properties.request_problem_infomation)");
  EXPECT_EQ(load_error("bridges.mqtt.cache { flush_mem_threshold = 0 }\n"),
            "t.conf:1: bridges.mqtt.cache.flush_mem_threshold: must be between 1 and 4294967295, "
            "got 0");
}

TEST(BridgeErrors, Topics) {
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = a, remote_topic = \"fwd/#\" }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].remote_topic: must be a topic name without "
            "wildcards (+, #), got \"fwd/#\"");
  EXPECT_EQ(load_error(bridge("  subscription = [{ remote_topic = a, local_topic = \"l/+\" }]\n")),
            "t.conf:3: bridges.mqtt.b.subscription[0].local_topic: must be a topic name without "
            "wildcards (+, #), got \"l/+\"");
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = \"a/#/b\" }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].local_topic: '#' must stand alone in the last "
            "level of a topic filter, got \"a/#/b\"");
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = \"a/b#\" }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].local_topic: '#' must stand alone in the last "
            "level of a topic filter, got \"a/b#\"");
  EXPECT_EQ(load_error(bridge("  subscription = [{ remote_topic = \"a+/b\" }]\n")),
            "t.conf:3: bridges.mqtt.b.subscription[0].remote_topic: '+' must stand alone in its "
            "level of a topic filter, got \"a+/b\"");
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = \"\" }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].local_topic: a topic filter must not be empty, "
            "got \"\"");
  EXPECT_EQ(load_error(bridge("  forwards = [{ local_topic = a, prefix = \"+/\" }]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0].prefix: must be a topic name without "
            "wildcards (+, #), got \"+/\"");
  EXPECT_EQ(load_error(bridge("  will { topic = \"w/#\" }\n")),
            "t.conf:3: bridges.mqtt.b.will.topic: must be a topic name without wildcards (+, #), "
            "got \"w/#\"");
}

TEST(BridgeErrors, Shapes) {
  EXPECT_EQ(load_error("bridges.mqtt.b = 3\n"),
            "t.conf:1: bridges.mqtt.b: a bridge: expected { server = \"mqtt-tcp://host:port\", "
            "... }, got \"3\"");
  EXPECT_EQ(load_error("bridges.mqtt = 3\n"),
            "t.conf:1: bridges.mqtt: is a section: expected { ... }, got \"3\"");
  EXPECT_EQ(load_error("bridges = 3\n"),
            "t.conf:1: bridges: is a section: expected { ... }, got "
            "\"3\"");
  EXPECT_EQ(load_error("bridges.mqtt.\"\" { server = \"tcp://h\" }\n"),
            "t.conf:1: bridges.mqtt.: a bridge needs a name: bridges.mqtt.<name> { ... }");
  EXPECT_EQ(load_error("bridges.mqtt.\"a.b\" { server = \"tcp://h\" }\n"),
            "t.conf:1: bridges.mqtt.a.b: a bridge name must not hold '.'");
  EXPECT_EQ(load_error(bridge("  forwards = { local_topic = a }\n")),
            "t.conf:3: bridges.mqtt.b.forwards: expected a list of { local_topic = \"a/#\", "
            "remote_topic = \"b\" }, got an object");
  EXPECT_EQ(load_error(bridge("  forwards = [\"a/#\"]\n")),
            "t.conf:3: bridges.mqtt.b.forwards[0]: expected { local_topic = \"a/#\", remote_topic "
            "= \"b\" }, got \"a/#\"");
  EXPECT_EQ(load_error(bridge("  hybrid_servers = \"tcp://x\"\n")),
            "t.conf:3: bridges.mqtt.b.hybrid_servers: expected a list of \"mqtt-tcp://host:port\", "
            "got \"tcp://x\"");
}

TEST(BridgeWarnings, AcceptedNotActedOnNameTheFullKeyOnce) {
  auto r = load_ok(
      bridge("  transparent = true\n"
             "  ssl { enable = false, keyfile = \"/k.pem\" }\n"
             "  quic_keepalive = 120s\n"
             "  quic_anything_new = 1\n"
             "  tcp { nodelay = false }\n"
             "  retry_qos_0 = false\n"
             "  hybrid_bridging = true\n"
             "  sub_properties { identifier = 1 }\n"
             "  will { topic = t, properties { will_delay_interval = 0 } }\n"
             "  subscription = [{ remote_topic = a, retain = 2 }]\n"
             "  hybrid_servers = [\"mqtt-quic://q1:1\", \"mqtt-quic://q2:2\", \"tcp://t\"]\n"));
  const auto& w = r.warnings;
  EXPECT_EQ(count_warnings(w,
                           "t.conf:3: bridges.mqtt.b.transparent: accepted, not acted on "
                           "(transparent bridging is not implemented"),
            1u)
      << all(w);
  EXPECT_EQ(count_warnings(w, "bridges.mqtt.b.ssl"), 0u) << all(w);  // disabled: quiet
  EXPECT_EQ(count_warnings(w,
                           "t.conf:5: bridges.mqtt.b.quic_keepalive: accepted, not acted on "
                           "(QUIC transport)"),
            1u);
  EXPECT_EQ(count_warnings(w,
                           "t.conf:6: bridges.mqtt.b.quic_anything_new: accepted, not acted on "
                           "(QUIC transport)"),
            1u);
  EXPECT_EQ(count_warnings(w, "t.conf:7: bridges.mqtt.b.tcp: accepted, not acted on"), 1u);
  EXPECT_EQ(count_warnings(w, "t.conf:8: bridges.mqtt.b.retry_qos_0: accepted, not acted on"), 1u);
  EXPECT_EQ(count_warnings(w,
                           "t.conf:9: bridges.mqtt.b.hybrid_bridging: accepted, not acted on "
                           "(a bridge always fails over through hybrid_servers when that list "
                           "is not empty)"),
            1u)
      << all(w);
  EXPECT_EQ(count_warnings(w, "t.conf:10: bridges.mqtt.b.sub_properties: accepted, not acted on"),
            1u);
  EXPECT_EQ(count_warnings(w, "t.conf:11: bridges.mqtt.b.will.properties: accepted, not acted on"),
            1u);
  EXPECT_EQ(count_warnings(w,
                           "t.conf:12: bridges.mqtt.b.subscription[0].retain: accepted, not "
                           "acted on"),
            1u);
  EXPECT_EQ(count_warnings(w,
                           "t.conf:13: bridges.mqtt.b.hybrid_servers: skipped "
                           "\"mqtt-quic://q1:1\", \"mqtt-quic://q2:2\" (QUIC bridges are not "
                           "supported)"),
            1u)
      << all(w);
  EXPECT_EQ(w.size(), 10u) << all(w);
  ASSERT_EQ(r.config->bridges.size(), 1u);
  EXPECT_EQ(r.config->bridges[0].hybrid_servers, (std::vector<BridgeServer>{{"t", 1883}}));

  auto quiet = load_ok(bridge("  transparent = false\n"));
  EXPECT_TRUE(quiet.warnings.empty()) << all(quiet.warnings);
  auto cache = load_ok("bridges.mqtt.cache { mounted_file_path = \"/tmp/\" }\n");
  EXPECT_EQ(count_warnings(cache.warnings,
                           "t.conf:1: bridges.mqtt.cache.mounted_file_path: "
                           "accepted, not acted on"),
            1u)
      << all(cache.warnings);
  EXPECT_EQ(cache.config->bridge_cache.mounted_file_path, "/tmp/");
}

TEST(Bridges, OtherBridgeTypesStayUnimplementedSections) {
  auto r = load_ok(
      "bridges.aws.c1 { server = \"127.0.0.1:8883\", anything = [goes] }\n"
      "bridges.nng.pub.t1 { enable = true }\n"
      "bridges.nng.sub.t2 { enable = true }\n"
      "bridges.zmq.z { x = 1 }\n"
      "bridges.mqtt.b { server = \"tcp://h\" }\n");
  EXPECT_EQ(r.config->unimplemented_sections,
            (std::vector<std::string>{"bridges.aws", "bridges.nng", "bridges.zmq"}));
  ASSERT_EQ(r.warnings.size(), 3u) << all(r.warnings);
  EXPECT_EQ(r.warnings[0],
            "t.conf:1: bridges.aws: NanoMQ section not implemented yet (AWS IoT Core bridges); "
            "accepted, contents ignored");
  EXPECT_EQ(r.warnings[1],
            "t.conf:2: bridges.nng: NanoMQ section not implemented yet (NNG bridges); accepted, "
            "contents ignored");
  EXPECT_EQ(r.warnings[2],
            "t.conf:4: bridges.zmq: NanoMQ section not implemented yet (`zmq` bridges); accepted, "
            "contents ignored");
  EXPECT_EQ(r.config->bridges.size(), 1u);
}

TEST(Bridges, OriginsNameTheLine) {
  auto r = load_ok(bridge("  keepalive = 10s\n  forwards = [\n    { local_topic = a }\n  ]\n"));
  const Config& c = *r.config;
  EXPECT_EQ(c.key_error("bridges.mqtt.b.server", "x"), "t.conf:2: bridges.mqtt.b.server: x");
  EXPECT_EQ(c.key_error("bridges.mqtt.b.keepalive", "x"), "t.conf:3: bridges.mqtt.b.keepalive: x");
  EXPECT_EQ(c.key_error("bridges.mqtt.b", "x"), "t.conf:1: bridges.mqtt.b: x");
  EXPECT_EQ(c.key_error("bridges.mqtt.b.forwards[0]", "x"),
            "t.conf:5: bridges.mqtt.b.forwards[0]: x");
}

TEST(Bridges, CommandLineOverridesReachFileBridges) {
  LoadOptions options;
  options.path = kCompat + "nanomq_bridge.conf";
  options.read_environment = false;
  options.overrides = {"bridges.mqtt.emqx1.keepalive=30", "bridges.mqtt.emqx1.proto_ver=5"};
  auto r = load(options);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->config->bridges.size(), 1u);
  EXPECT_EQ(r->config->bridges[0].keepalive, 30s);
  EXPECT_EQ(r->config->bridges[0].proto_ver, 5);
  options.overrides = {"bridges.mqtt.emqx1.proto_ver=3"};
  auto refused = load(options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().to_string(),
            "<command line>: bridges.mqtt.emqx1.proto_ver: MQTT 3.1 bridges are not supported; "
            "use 4 or 5");
}

TEST(BridgeReload, ChangesAreOneReloadableKey) {
  auto running = load_ok("bridges.mqtt.a { server = \"tcp://h\" }\n").config;
  auto moved =
      load_ok("bridges.mqtt.a { server = \"tcp://h:1884\" }\nmqtt.max_mqueue_len = 5\n").config;
  auto changes = diff(*running, *moved);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].key, "mqtt.max_mqueue_len");
  EXPECT_EQ(changes[1], (KeyChange{"bridges.mqtt", "a (h:1883)", "a (h:1884)", true}));

  auto retuned = load_ok("bridges.mqtt.a { server = \"tcp://h\", keepalive = 5 }\n").config;
  EXPECT_EQ(diff(*running, *retuned),
            (std::vector<KeyChange>{
                {"bridges.mqtt", "a (h:1883)", "a (h:1883) (settings changed)", true}}));
  auto cache = load_ok(
                   "bridges.mqtt.a { server = \"tcp://h\" }\n"
                   "bridges.mqtt.cache { disk_cache_size = 5 }\n")
                   .config;
  EXPECT_EQ(
      diff(*running, *cache),
      (std::vector<KeyChange>{{"bridges.mqtt", "a (h:1883)", "a (h:1883) (cache changed)", true}}));
  EXPECT_EQ(diff(*load_ok("").config, *running),
            (std::vector<KeyChange>{{"bridges.mqtt", "none", "a (h:1883)", true}}));
  EXPECT_TRUE(diff(*running, *running).empty());

  auto merged = merge_for_reload(*running, *moved);
  EXPECT_EQ(merged->bridges, moved->bridges);  // applied by the reload (Server::reconfigure)
  EXPECT_EQ(merged->mqtt.max_mqueue_len, 5u);
  EXPECT_TRUE(diff(*merged, *moved).empty());
  ASSERT_EQ(diff(*running, *merged).size(), 2u);
  EXPECT_TRUE(diff(*running, *merged)[1].reloadable);
}

}  // namespace
}  // namespace harbor::config
