// merge_for_reload: a reload takes the file's value for every reloadable key and keeps the
// running value of every key that needs a restart.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/schema.hpp"

namespace harbor::config {
namespace {

std::shared_ptr<const Config> from(const std::string& text) {
  auto r = load_string(text, "r.conf");
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  return r ? r->config : defaults();
}

TEST(ReloadMerge, ReloadableKeysChangeOthersKeepRunningValues) {
  auto running = from(
      "listeners.tcp { bind = \"127.0.0.1:1999\" }\n"
      "mqtt { max_mqueue_len = 10, max_inflight_window = 5 }\n"
      "sqlite { mounted_file_path = \"/tmp/a\", disk_cache_size = 100 }\n"
      "log { level = warn, to = [console] }\n");
  auto fresh = from(
      "listeners.tcp { bind = \"127.0.0.1:2000\" }\n"
      "mqtt { max_mqueue_len = 20, max_inflight_window = 7 }\n"
      "sqlite { mounted_file_path = \"/tmp/b\", disk_cache_size = 200 }\n"
      "log { level = debug, to = [console, syslog] }\n");
  auto merged = merge_for_reload(*running, *fresh);
  EXPECT_EQ(merged->tcp.bind, "127.0.0.1:1999");
  EXPECT_EQ(merged->sqlite.mounted_file_path, "/tmp/a");
  EXPECT_EQ(merged->mqtt.max_mqueue_len, 20u);
  EXPECT_EQ(merged->mqtt.max_inflight_window, 7u);
  EXPECT_EQ(merged->sqlite.disk_cache_size, 200u);
  EXPECT_EQ(merged->log.level, "debug");
  for (const auto& change : diff(*running, *merged)) {
    EXPECT_TRUE(change.reloadable) << change.key << " changed without being reloadable";
  }
  for (const auto& change : diff(*merged, *fresh)) {
    EXPECT_FALSE(change.reloadable) << change.key << " reloadable but not applied";
  }
  EXPECT_NE(merged->key_error("listeners.tcp.bind", "x").find("r.conf:1"), std::string::npos);
}

// Every row's shown value converts back to the same value: a running value survives the
// merge whatever its type (durations, sizes, lists, doubles, enums).
TEST(ReloadMerge, EveryRowRoundTrips) {
  auto running = defaults();
  auto merged = merge_for_reload(*running, *running);
  for (const auto& row : schema()) {
    EXPECT_EQ(row.show(*merged), row.show(*running)) << row.key;
  }
}

TEST(ReloadMerge, KeyErrorNamesTheBuiltInDefault) {
  EXPECT_EQ(defaults()->key_error("listeners.tcp.bind", "in use"),
            "<defaults>: listeners.tcp.bind: in use");
}

}  // namespace
}  // namespace harbor::config
