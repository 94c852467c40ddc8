// The configuration turned into each layer's own settings (DESIGN.md §2: only app sees
// config types; store and broker get plain structs of what they use).
#pragma once

#include "config/config.hpp"
#include "store/store_settings.hpp"

namespace harbor::app {

// The sqlite {} section as the store's settings.
inline store::StoreSettings store_settings_from(const config::SqliteSettings& s) {
  store::StoreSettings out;
  out.directory = s.mounted_file_path;
  out.disk_cache_size = s.disk_cache_size;
  out.ack_policy = s.ack_policy == config::AckPolicy::Immediate ? store::AckPolicy::Immediate
                                                                 : store::AckPolicy::AfterCommit;
  out.synchronous = s.synchronous == config::SyncMode::Full ? store::SyncMode::Full
                                                             : store::SyncMode::Normal;
  out.commit_interval = s.commit_interval;
  out.commit_batch = s.commit_batch;
  return out;
}

}  // namespace harbor::app
