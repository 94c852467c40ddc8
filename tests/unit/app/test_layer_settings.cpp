// app/layer_settings.hpp: every key the store and the broker use reaches their settings.
#include "app/layer_settings.hpp"

#include <gtest/gtest.h>

namespace harbor::app {
namespace {

TEST(LayerSettings, SqliteSectionBecomesStoreSettings) {
  config::SqliteSettings section;
  section.enabled = true;
  section.mounted_file_path = "/var/lib/harbormq/x";
  section.disk_cache_size = 77;
  section.disk_cache_bytes = 4321;
  section.ack_policy = config::AckPolicy::Immediate;
  section.synchronous = config::SyncMode::Full;
  section.commit_interval = std::chrono::milliseconds(12);
  section.commit_batch = 345;
  store::StoreSettings s = store_settings_from(section);
  EXPECT_EQ(s.directory, "/var/lib/harbormq/x");
  EXPECT_EQ(s.disk_cache_size, 77u);
  EXPECT_EQ(s.disk_cache_bytes, 4321u);
  EXPECT_EQ(s.ack_policy, store::AckPolicy::Immediate);
  EXPECT_EQ(s.synchronous, store::SyncMode::Full);
  EXPECT_EQ(s.commit_interval, std::chrono::milliseconds(12));
  EXPECT_EQ(s.commit_batch, 345u);

  section.ack_policy = config::AckPolicy::AfterCommit;
  section.synchronous = config::SyncMode::Normal;
  s = store_settings_from(section);
  EXPECT_EQ(s.ack_policy, store::AckPolicy::AfterCommit);
  EXPECT_EQ(s.synchronous, store::SyncMode::Normal);
}

// broker::Settings' own defaults are the configuration's: a broker built without a file
// (unit tests, the fuzzer) runs with the limits a user gets by default.
TEST(LayerSettings, BrokerSettingsDefaultsAreTheConfigDefaults) {
  EXPECT_EQ(broker_settings_from(config::defaults()->mqtt), broker::Settings{});
  EXPECT_EQ(broker_settings_from(config::MqttSettings{}), broker::Settings{});
  EXPECT_EQ(broker_settings_from(config::defaults()->mqtt, config::defaults()->sqlite), broker::Settings{});
}

// The in-memory head of a persistent queue comes from the sqlite {} section.
TEST(LayerSettings, SqliteHeadKeysBecomeBrokerSettings) {
  config::SqliteSettings q;
  q.flush_mem_threshold = 7;
  q.flush_mem_bytes = 9000;
  broker::Settings s = broker_settings_from(config::MqttSettings{}, q);
  EXPECT_EQ(s.queue_head, 7u);
  EXPECT_EQ(s.queue_head_bytes, 9000u);
}

TEST(LayerSettings, MqttSectionBecomesBrokerSettings) {
  config::MqttSettings m;
  m.max_packet_size = 1001;
  m.max_mqueue_len = 1002;
  m.retry_interval = std::chrono::milliseconds(1003);
  m.keepalive_multiplier = 2.5;
  m.max_inflight_window = 1004;
  m.max_awaiting_rel = 1005;
  m.await_rel_timeout = std::chrono::milliseconds(1006);
  m.property_size = 7;
  m.max_topic_alias = 8;
  m.queue_qos0 = true;
  m.session_expiry_311 = 1009;
  m.connect_timeout = std::chrono::milliseconds(1010);
  m.max_topic_levels = 11;
  m.max_keepalive = 12;
  m.shared_subscription_strategy = config::SharedStrategy::HashTopic;
  broker::Settings s = broker_settings_from(m);
  EXPECT_EQ(s.max_packet_size, 1001u);
  EXPECT_EQ(s.max_mqueue_len, 1002u);
  EXPECT_EQ(s.retry_interval, std::chrono::milliseconds(1003));
  EXPECT_EQ(s.keepalive_multiplier, 2.5);
  EXPECT_EQ(s.max_inflight_window, 1004u);
  EXPECT_EQ(s.max_awaiting_rel, 1005u);
  EXPECT_EQ(s.await_rel_timeout, std::chrono::milliseconds(1006));
  EXPECT_EQ(s.max_user_properties, 7u);
  EXPECT_EQ(s.max_topic_alias, 8u);
  EXPECT_TRUE(s.queue_qos0);
  EXPECT_EQ(s.session_expiry_311, 1009u);
  EXPECT_EQ(s.connect_timeout, std::chrono::milliseconds(1010));
  EXPECT_EQ(s.max_topic_levels, 11u);
  EXPECT_EQ(s.max_keepalive, 12u);
  EXPECT_EQ(s.shared_strategy, broker::SharedStrategy::HashTopic);
}

TEST(LayerSettings, EverySharedStrategyMapsToItsBrokerValue) {
  using C = config::SharedStrategy;
  using B = broker::SharedStrategy;
  EXPECT_EQ(shared_strategy_from(C::RoundRobin), B::RoundRobin);
  EXPECT_EQ(shared_strategy_from(C::Random), B::Random);
  EXPECT_EQ(shared_strategy_from(C::Sticky), B::Sticky);
  EXPECT_EQ(shared_strategy_from(C::HashClientId), B::HashClientId);
  EXPECT_EQ(shared_strategy_from(C::HashTopic), B::HashTopic);
}

}  // namespace
}  // namespace harbor::app
