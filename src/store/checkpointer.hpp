// WAL checkpoints on a connection and a thread of their own, so the writer never copies
// pages into the database file (and never waits for that fsync) inside a commit.
//
// The writer's WAL hook calls request() once the WAL has grown past a threshold; the
// checkpointer runs a PASSIVE checkpoint, which never blocks the writer. A checkpoint that
// fails (full disk, I/O error) loses nothing: the pages stay in the WAL; it is logged once
// and retried at the next request.
//
// Threads: request() from any thread (the writer); open/stop/destructor from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <tl/expected.hpp>

#include "store/sqlite_db.hpp"

namespace harbor::store {

class Checkpointer {
 public:
  using Log = std::function<void(int level, std::string_view)>;

  // Opens a second connection to `path` and starts the thread.
  static tl::expected<std::unique_ptr<Checkpointer>, std::string> start(
      const std::string& path, const std::string& vfs, std::chrono::milliseconds busy_timeout,
      Log log);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Asks for a checkpoint; requests made while one runs are coalesced into the next.
  void request();
  // Finishes a running checkpoint, ends the thread and closes the connection. Idempotent.
  void stop();
  uint64_t checkpoints() const { return done_.load(std::memory_order_relaxed); }

 private:
  Checkpointer(Db db, std::string path, Log log)
      : db_(std::move(db)), path_(std::move(path)), log_(std::move(log)) {}
  void run();

  Db db_;  // the checkpointer thread only
  const std::string path_;
  Log log_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool requested_ = false;  // under mutex_
  bool stopping_ = false;   // under mutex_
  bool failing_ = false;    // checkpointer thread only
  std::atomic<uint64_t> done_{0};
  std::thread thread_;
};

}  // namespace harbor::store
