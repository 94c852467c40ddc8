#include "store/checkpointer.hpp"

#include <utility>

namespace harbor::store {
namespace {
constexpr int kLogInfo = 2;
constexpr int kLogWarn = 3;
}  // namespace

tl::expected<std::unique_ptr<Checkpointer>, std::string> Checkpointer::start(
    const std::string& path, const std::string& vfs, std::chrono::milliseconds busy_timeout,
    Log log) {
  auto db = Db::open(path, vfs);
  if (!db) return tl::unexpected(db.error());
  sqlite3_busy_timeout(db->handle(), static_cast<int>(busy_timeout.count()));
  // A checkpoint copies frames with its own buffer, not through the page cache.
  db->exec("PRAGMA cache_size = -64");
  // A connection opens the WAL on its first read; until then a checkpoint does nothing.
  auto mode = db->query_text("PRAGMA journal_mode");
  if (!mode || *mode != "wal") {
    return tl::unexpected(path +
                          ": checkpoint connection is not in WAL mode: " + db->error_message());
  }
  std::unique_ptr<Checkpointer> c(new Checkpointer(std::move(*db), path, std::move(log)));
  c->thread_ = std::thread([raw = c.get()] { raw->run(); });
  return c;
}

Checkpointer::~Checkpointer() { stop(); }

void Checkpointer::request() {
  {
    std::lock_guard lock(mutex_);
    if (requested_) return;
    requested_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  db_.close();
}

void Checkpointer::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return requested_ || stopping_; });
      if (stopping_) return;
      requested_ = false;
    }
    int wal_frames = 0;
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &wal_frames, &copied);
    if (rc == SQLITE_OK) {
      done_.fetch_add(1, std::memory_order_relaxed);
      if (failing_) {
        failing_ = false;
        if (log_) log_(kLogInfo, path_ + ": WAL checkpoints succeed again");
      }
    } else if (rc != SQLITE_BUSY && !failing_) {
      // BUSY: another checkpoint runs (the writer's own, when the WAL grew too long).
      failing_ = true;
      if (log_) {
        log_(kLogWarn, path_ + ": WAL checkpoint failed (" + db_.error_message() +
                           "); the data stays in the WAL, retrying at the next commit");
      }
    }
  }
}

}  // namespace harbor::store
