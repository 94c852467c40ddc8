// What the store is told by the configuration: app builds it from the config file's sqlite {}
// section (config::SqliteSettings), so the store depends on no config type (DESIGN.md §2:
// store → broker). Options that no config key sets are store::StoreOptions (store.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace harbor::store {

// When a QoS 1/2 PUBLISH that must be stored is acknowledged (DESIGN.md §4).
enum class AckPolicy : uint8_t {
  AfterCommit,  // after the COMMIT that holds it: survives kill -9
  Immediate,    // at once: a crash can lose the last batch
};

// PRAGMA synchronous of the write connection: Full also survives power loss.
enum class SyncMode : uint8_t { Normal, Full };

struct StoreSettings {
  std::string directory = "./data";   // holds harbormq.db (sqlite.mounted_file_path)
  uint64_t disk_cache_size = 102400;  // messages stored at most; 0 = unbounded
  // Bytes the database's pages in use may take (page size x pages not free); 0 = unbounded.
  uint64_t disk_cache_bytes = 0;
  AckPolicy ack_policy = AckPolicy::AfterCommit;
  SyncMode synchronous = SyncMode::Normal;
  // Group commit: how long the writer waits for more ops before a COMMIT (0 = it commits
  // what it has), and the most ops one transaction holds.
  std::chrono::milliseconds commit_interval{0};
  uint32_t commit_batch = 1000;
  bool operator==(const StoreSettings&) const = default;
};

}  // namespace harbor::store
