// app/layer_settings.hpp: every key the store uses reaches its settings.
#include "app/layer_settings.hpp"

#include <gtest/gtest.h>

namespace harbor::app {
namespace {

TEST(LayerSettings, SqliteSectionBecomesStoreSettings) {
  config::SqliteSettings section;
  section.enabled = true;
  section.mounted_file_path = "/var/lib/harbormq/x";
  section.disk_cache_size = 77;
  section.ack_policy = config::AckPolicy::Immediate;
  section.synchronous = config::SyncMode::Full;
  section.commit_interval = std::chrono::milliseconds(12);
  section.commit_batch = 345;
  store::StoreSettings s = store_settings_from(section);
  EXPECT_EQ(s.directory, "/var/lib/harbormq/x");
  EXPECT_EQ(s.disk_cache_size, 77u);
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

}  // namespace
}  // namespace harbor::app
