// Helpers for the store tests: a temporary directory under /tmp, settings, messages, a
// second read-only look at the database file, and waiting on a condition with a deadline.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "store/sqlite_db.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace harbor::store::test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/harbor_store_XXXXXX";
    char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string db_path() const { return path_ + "/harbormq.db"; }

 private:
  std::string path_;
};

inline StoreSettings settings_for(const TempDir& dir) {
  StoreSettings s;
  s.directory = dir.path();
  s.disk_cache_size = 0;
  s.commit_interval = std::chrono::milliseconds(2);
  s.commit_batch = 1000;
  return s;
}

// A quiet log that remembers what was said.
struct LogCapture {
  std::mutex mutex;
  std::vector<std::pair<int, std::string>> lines;
  std::function<void(int, std::string_view)> sink() {
    return [this](int level, std::string_view text) {
      std::lock_guard lock(mutex);
      lines.emplace_back(level, std::string(text));
    };
  }
  size_t count_containing(std::string_view needle) {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (const auto& l : lines) n += l.second.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
  size_t count(int level) {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (const auto& l : lines) n += l.first == level ? 1 : 0;
    return n;
  }
};

inline std::unique_ptr<Store> open_store(const StoreSettings& s, const StoreOptions& options = {}) {
  auto store = Store::open(s, options);
  EXPECT_TRUE(store.has_value()) << (store ? "" : store.error());
  if (!store) return nullptr;
  (*store)->set_log([](int, std::string_view) {});
  return std::move(*store);
}

inline broker::MessagePtr make_message(broker::MessageId id, std::string topic,
                                       std::string payload, int64_t expires_at_ms = 0) {
  auto m = std::make_shared<broker::Message>();
  m->store_id = id;
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->received_at_ms = 1'700'000'000'000;
  m->expires_at_ms = expires_at_ms;
  return m;
}

inline broker::OpSessionUpsert session(std::string client, uint32_t expiry_s = 0xFFFFFFFF,
                                       int64_t last_seen_ms = 0) {
  broker::OpSessionUpsert s;
  s.client_id = std::move(client);
  s.version = 5;
  s.expiry_s = expiry_s;
  s.last_seen_ms = last_seen_ms;
  return s;
}

inline broker::OpQueueAdd queue_add(std::string client, uint64_t seq, broker::MessagePtr message) {
  broker::OpQueueAdd q;
  q.client_id = std::move(client);
  q.seq = seq;
  q.message = std::move(message);
  q.qos = 1;
  return q;
}

inline bool wait_until(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits until everything through `seq` is committed (or the default deadline passes).
inline bool durable_by(Store& store, uint64_t seq) {
  return wait_until([&] { return store.durable_seq() >= seq; });
}

// Counts rows with a separate connection (WAL readers see the last commit).
inline int64_t count_rows(const std::string& db_path, const std::string& sql) {
  auto db = Db::open(db_path, "");
  if (!db) return -1;
  auto n = db->query_int(sql);
  return n ? *n : -1;
}

}  // namespace harbor::store::test
