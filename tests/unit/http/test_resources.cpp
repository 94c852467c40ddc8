// The /api/v4 bodies and the Prometheus text as pure data (http/resources.hpp).
#include <gtest/gtest.h>

#include "http/resources.hpp"

namespace harbor::http {
namespace {

broker::ClientSummary client(std::string id, bool connected, uint8_t ver = 4) {
  broker::ClientSummary c;
  c.client_id = std::move(id);
  c.username = "u-" + c.client_id;
  c.connected = connected;
  c.proto_ver = ver;
  c.keepalive_s = connected ? 60 : 0;
  c.clean_start = true;
  c.connected_at_ms = 1700000000000;
  return c;
}

TEST(Resources, EndpointsHaveNanoMqFields) {
  auto body = endpoints_body();
  EXPECT_EQ(body["code"], 0);
  ASSERT_FALSE(body["data"].empty());
  for (const auto& e : body["data"]) {
    EXPECT_TRUE(e.contains("path") && e.contains("name") && e.contains("method") &&
                e.contains("descr"))
        << e.dump();
  }
}

TEST(Resources, UptimeInNanoMqSpelling) {
  EXPECT_EQ(uptime_text(0), "0 Hours, 0 minutes, 0 seconds");
  EXPECT_EQ(uptime_text((15 * 3600 + 1 * 60 + 38) * 1000 + 999), "15 Hours, 1 minutes, 38 seconds");
}

TEST(Resources, BrokersAndNodes) {
  ProcessInfo p{.version = "0.1.0", .now_unix_ms = 0, .uptime_ms = 61000};
  Counters c;
  c.connections = 3;
  auto b = brokers_body(p);
  ASSERT_EQ(b["data"].size(), 1u);
  EXPECT_EQ(b["data"][0]["node_status"], "Running");
  EXPECT_EQ(b["data"][0]["uptime"], "0 Hours, 1 minutes, 1 seconds");
  EXPECT_EQ(b["data"][0]["version"], "0.1.0");
  auto n = nodes_body(p, c);
  EXPECT_EQ(n["data"][0]["connections"], 3);
  auto m = metrics_body(ProcessInfo{.cpu_percent = 1.5, .memory_bytes = 42}, c);
  EXPECT_EQ(m["cpuinfo"], "1.50%");
  EXPECT_EQ(m["memory"], "42");
  EXPECT_TRUE(m["metrics"].is_array());
}

TEST(Resources, ClientsFilteredSortedAndPaged) {
  std::vector<broker::ClientSummary> all = {client("c", true), client("a", true, 5),
                                            client("b", false)};
  auto body = clients_body(all, {});
  ASSERT_TRUE(body);
  ASSERT_EQ((*body)["data"].size(), 3u);
  EXPECT_EQ((*body)["data"][0]["client_id"], "a");
  EXPECT_EQ((*body)["data"][0]["proto_ver"], 5);
  EXPECT_EQ((*body)["data"][1]["conn_state"], "disconnected");
  EXPECT_EQ((*body)["meta"]["count"], 3);

  auto online = clients_body(all, {{"conn_state", "connected"}});
  ASSERT_TRUE(online);
  EXPECT_EQ((*online)["data"].size(), 2u);
  auto v5 = clients_body(all, {{"proto_ver", "5"}});
  ASSERT_TRUE(v5);
  EXPECT_EQ((*v5)["data"].size(), 1u);
  auto page2 = clients_body(all, {{"_page", "2"}, {"_limit", "2"}});
  ASSERT_TRUE(page2);
  ASSERT_EQ((*page2)["data"].size(), 1u);
  EXPECT_EQ((*page2)["data"][0]["client_id"], "c");
  auto by_user = clients_body(all, {{"username", "u-b"}});
  ASSERT_TRUE(by_user);
  EXPECT_EQ((*by_user)["data"].size(), 1u);
}

TEST(Resources, ClientsBadParametersSayWhich) {
  EXPECT_NE(clients_body({}, {{"_limit", "0"}}).error().find("_limit"), std::string::npos);
  EXPECT_NE(clients_body({}, {{"_page", "x"}}).error().find("_page"), std::string::npos);
  EXPECT_NE(clients_body({}, {{"conn_state", "idle?"}}).error().find("conn_state"),
            std::string::npos);
  EXPECT_NE(clients_body({}, {{"bogus", "1"}}).error().find("bogus"), std::string::npos);
}

TEST(Resources, BridgeSessionsAreNotClients) {
  auto b = client("bridge", true);
  b.bridge = true;
  auto body = clients_body({b}, {});
  ASSERT_TRUE(body);
  EXPECT_TRUE((*body)["data"].empty());
}

TEST(Resources, PrometheusTextHasTypesAndValues) {
  Counters c;
  c.connections = 2;
  c.messages_in = 7;
  c.dropped_expired = 1;
  std::string text = prometheus_text(ProcessInfo{}, c);
  EXPECT_NE(text.find("# TYPE nanomq_connections_count gauge\nnanomq_connections_count 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("nanomq_messages_received 7\n"), std::string::npos);
  EXPECT_NE(text.find("harbormq_messages_dropped_total{reason=\"expired\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace harbor::http
