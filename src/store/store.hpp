// SQLite persistence for the broker (DESIGN.md §4, docs/persistence.md).
//
// Lifecycle, all on one "owner" thread (the main thread in the app):
//   auto store = Store::open(settings);   // creates/migrates <settings.directory>/harbormq.db
//   auto state = store->restore(now_ms);  // once, before start()
//   store->set_durable_listener(...); store->set_log(...);   // before start()
//   store->start();                       // starts the writer thread
//   ... shards call submit()/submit_batch()/durable_seq()/degraded()/next_message_id() ...
//   store->stop();                        // drains, commits, checkpoints (TRUNCATE), closes
//
// Threads:
//   - submit, submit_batch, durable_seq, degraded, full, commit_failing, ack_after_commit,
//     next_message_id, count_refusal, stats, usage, describe_size: any thread.
//   - open, restore, set_durable_listener, set_log, start, stop, destructor: the owner
//     thread; the setters only before start().
//   - The durable listener and the log callback run on the writer thread (the log callback
//     may also run on the owner thread during open/restore/stop, on the checkpointer
//     thread, and once on a submitting thread when the in-memory bound is hit). Neither is
//     called with a store lock held.
//
// Emits: durable_seq advances after each COMMIT; the listener gets the new value.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tl/expected.hpp>
#include <unordered_map>
#include <vector>

#include "broker/ports.hpp"
#include "store/checkpointer.hpp"
#include "store/inbox.hpp"
#include "store/op_applier.hpp"
#include "store/queue_reader.hpp"
#include "store/sqlite_db.hpp"
#include "store/store_settings.hpp"

namespace harbor::store {

// Log levels passed to the log callback.
inline constexpr int kLogDebug = 1;
inline constexpr int kLogInfo = 2;
inline constexpr int kLogWarn = 3;
inline constexpr int kLogError = 4;

// Options that no config key sets (what the config sets is StoreSettings, store_settings.hpp).
struct StoreOptions {
  // SQLite VFS to open the database with; empty = the default VFS. A test / fault-injection
  // hook: tests register a wrapper VFS whose writes can fail with SQLITE_FULL.
  std::string vfs_name;
  // How often a batch that failed to commit is retried.
  std::chrono::milliseconds retry_interval{500};
  // Writer idle time after writes before a PASSIVE WAL checkpoint.
  std::chrono::milliseconds idle_checkpoint{1000};
  // WAL frames after which the checkpointer thread is asked for a checkpoint (SQLite's own
  // default threshold), and after which the writer checkpoints itself because the
  // checkpointer is not keeping up.
  int checkpoint_frames = 1000;
  int writer_checkpoint_frames = 16000;
  // Bound on ops held in memory while commits fail (see docs/persistence.md, "Faults").
  size_t max_held_ops = 1'000'000;
  size_t max_held_bytes = 256u * 1024 * 1024;
  std::chrono::milliseconds busy_timeout{5000};
  // Giving disk back (auto_vacuum = INCREMENTAL): once the writer is idle and the file has
  // at least this many free pages (and an eighth of its pages free), it frees them
  // vacuum_step_pages at a time, each step after vacuum_pause with nothing to write, then
  // truncates the WAL. Never while there is something to commit.
  int64_t vacuum_min_free_pages = 256;
  int vacuum_step_pages = 1024;
  std::chrono::milliseconds vacuum_pause{10};
  // QoS 1 in-flight states held back by the applier (OpApplier::set_deferral): written by
  // the first batch deferred_max_age after theirs, the oldest earlier when more than
  // deferred_max_entries are held, all of them after deferred_wait with nothing else to
  // commit, and at stop.
  std::chrono::milliseconds deferred_wait{20};
  std::chrono::milliseconds deferred_max_age{500};
  size_t deferred_max_entries = 65536;
  // A database without incremental auto-vacuum (made before it) is converted at open, with
  // one VACUUM, when the file is at most this large; a larger one keeps its size until a
  // start where it is smaller.
  uint64_t vacuum_convert_max_bytes = 256u * 1024 * 1024;
};

struct DiskUsage {
  uint64_t db_bytes = 0;
  uint64_t wal_bytes = 0;
};

struct Stats {
  // Ops per committed transaction: histogram bucket i counts commits with
  // 2^i <= ops < 2^(i+1) (bucket 0: 1 op); the last bucket is open-ended.
  static constexpr size_t kBuckets = 16;
  uint64_t commits = 0;
  uint64_t committed_ops = 0;
  uint64_t max_batch = 0;
  std::array<uint64_t, kBuckets> batch_histogram{};
  uint64_t submitted_ops = 0;
  uint64_t elided_ops = 0;      // queue add/remove pairs that never touched a table
  uint64_t failed_ops = 0;      // ops skipped for a non-storage error
  uint64_t failed_commits = 0;  // transactions rolled back for a storage error
  uint64_t refusals = 0;        // messages the broker refused because the store was full
  uint64_t dropped_ops = 0;     // ops dropped past the degraded in-memory bound
  uint64_t checkpoints = 0;
  uint64_t vacuumed_pages = 0;   // free pages given back to the file system
  uint64_t stored_messages = 0;  // message rows, counting queued adds
  uint64_t used_bytes = 0;       // database pages in use x page size, at the last commit
  uint64_t queued_ops = 0;       // submitted, not yet committed
  uint64_t durable_seq = 0;
  bool degraded = false;
  bool full = false;
  double mean_batch() const { return commits == 0 ? 0.0 : double(committed_ops) / double(commits); }
};

class Store final : public broker::PersistenceSink {
 public:
  static tl::expected<std::unique_ptr<Store>, std::string> open(const StoreSettings& settings);
  static tl::expected<std::unique_ptr<Store>, std::string> open(const StoreSettings& settings,
                                                                const StoreOptions& options);

  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Loads what survived, dropping (and deleting) expired sessions and expired messages,
  // orphaned rows and their references. Each session's entries in flight are loaded, and
  // `queue_head` entries of its queue after them (0: all); the rest stays on disk
  // (RestoredSession::paged_from) for read_queue(). Call once, before start().
  tl::expected<broker::RestoredState, std::string> restore(int64_t now_unix_ms,
                                                           size_t queue_head = 0);

  void set_durable_listener(std::function<void(uint64_t)> listener);
  void set_log(std::function<void(int level, std::string_view)> log);

  void start();
  // Drains everything submitted so far, commits it (retrying a failed batch until
  // `options.retry_interval * 10` passes at most, then gives up and logs what is lost),
  // checkpoints with TRUNCATE and closes. Idempotent.
  void stop();

  // ---- broker::PersistenceSink ----
  uint64_t submit(broker::PersistOp op) override;
  uint64_t submit_batch(std::vector<broker::PersistOp> ops) override;
  uint64_t durable_seq() const override { return durable_seq_.load(std::memory_order_acquire); }
  // Commits are failing, or the message bound is reached: refuse what must be stored.
  bool degraded() const override { return commit_failing() || full(); }
  bool ack_after_commit() const override { return settings_.ack_policy == AckPolicy::AfterCommit; }
  uint64_t pending_ops() const override { return backlog_ops_.load(std::memory_order_relaxed); }
  broker::MessageId next_message_id() override {
    return next_message_id_.fetch_add(1, std::memory_order_relaxed);
  }
  bool read_queue(const std::string& client_id, uint64_t from_seq, size_t limit,
                  std::vector<broker::RestoredQueueEntry>& out, std::string& error) override;

  // Commits are failing (disk full, I/O error); set and cleared by the writer.
  bool commit_failing() const { return commit_failing_.load(std::memory_order_acquire); }
  // disk_cache_size messages are stored (or queued to be), or the pages in use reached
  // disk_cache_bytes at the last commit; a bound of 0 is never reached.
  bool full() const;
  // Changes the bound (sqlite.disk_cache_size) of a running store, on reload. Any thread.
  void set_disk_cache_size(uint64_t messages);
  // The same for sqlite.disk_cache_bytes (bytes of database pages in use).
  void set_disk_cache_bytes(uint64_t bytes);
  // The broker refused a message because of degraded(): counted; the first is logged.
  void count_refusal();
  void note_refused() override { count_refusal(); }

  Stats stats() const;
  DiskUsage usage() const;
  std::string describe_size() const;  // "harbormq.db 1.2 MiB, WAL 64.0 KiB"
  const std::string& path() const { return path_; }

 private:
  Store(StoreSettings settings, StoreOptions options, std::string path, Db db, OpApplier applier);

  // Queues ops[0, count) (moved from); their seq fields are assigned here.
  uint64_t submit_pending(PendingOp* ops, size_t count);
  void log(int level, std::string_view text) const;
  void writer_loop();
  // SQLite's WAL hook on the writer connection (after each commit, writer thread).
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int wal_frames);
  // Commits up to commit_batch ops from the front of held_; false on a storage error.
  bool commit_front();
  // Takes what was submitted into held_, indexing the removals among it (held_removals_).
  bool take_into_held();
  // Marks, in held_[begin, end), the QoS 1 AwaitPuback updates of entries whose removal is
  // held too: the row goes soon, and writing its state first is wasted (a crash in between
  // resends that message as new, which QoS 1 allows; QoS 2 states are always written).
  std::unordered_map<uint64_t, uint32_t> held_removals_;  // queue_entry_hash -> count
  void checkpoint(const char* mode);
  bool truncate_pending_ = false;  // a TRUNCATE checkpoint was busy: the next idle one truncates
  static uint64_t op_bytes(const broker::PersistOp& op);
  void note_full();

  const StoreSettings settings_;
  const StoreOptions options_;
  const std::string path_;
  Db db_;  // owner thread until start(), then the writer thread only
  OpApplier applier_;
  QueueReader reader_;  // read_queue(): a read-only connection per calling thread
  std::atomic<uint64_t> disk_cache_size_;   // settings_.disk_cache_size until a reload
  std::atomic<uint64_t> disk_cache_bytes_;  // settings_.disk_cache_bytes until a reload
  std::atomic<uint64_t> used_bytes_{0};     // pages in use x page size, after each commit
  int64_t page_size_ = 4096;
  // Writer thread (and open): reads the pages in use into used_bytes_.
  void measure_used_bytes();

  Inbox inbox_;
  // Submitted and not yet committed (or dropped): bounds memory while commits fail.
  std::atomic<uint64_t> backlog_ops_{0};
  std::atomic<uint64_t> backlog_bytes_{0};
  // Set once ops were dropped past the bound: durable_seq never advances again (restart).
  std::atomic<bool> poisoned_{false};

  // Writer thread only: taken from the inbox, not committed yet (kept across failures).
  std::vector<PendingOp> held_;
  size_t held_front_ = 0;
  bool wrote_since_checkpoint_ = false;
  // Writer thread: the file has enough free pages to give back (vacuum_step()).
  bool vacuuming_ = false;
  bool incremental_vacuum_ = false;  // the database is in auto_vacuum = INCREMENTAL
  std::string pending_open_note_;    // what open() found to log, logged by start()
  // Whether enough pages are free to vacuum; one step of it (false when nothing is left).
  bool vacuum_wanted();
  // Idle writer: gives back the capacity a burst left in held_, the inbox and the removal
  // index, then returns free heap to the system (malloc_trim), so RSS falls after a drain.
  void release_idle_memory();
  // Commits the applier's deferred in-flight states alone (writer idle, or stopping).
  void commit_deferred();
  bool deferred_failed_ = false;  // the last commit_deferred failed: wait for a batch
  bool vacuum_step();

  std::thread writer_;
  // Checkpoints off the writer thread (null: the writer checkpoints, SQLite's default).
  std::unique_ptr<Checkpointer> checkpointer_;
  bool wal_overgrown_ = false;  // writer thread: checkpoint inline after this commit
  bool started_ = false;
  bool restored_ = false;
  bool stopped_ = false;
  std::function<void(uint64_t)> durable_listener_;
  std::function<void(int, std::string_view)> log_;

  std::atomic<uint64_t> durable_seq_{0};
  std::atomic<bool> commit_failing_{false};
  std::atomic<uint64_t> next_message_id_{1};
  // Message rows plus new messages of queued OpQueueAdd/OpRetainedSet (an estimate the
  // writer corrects after each commit; never undercounts committed rows).
  std::atomic<int64_t> stored_messages_{0};
  std::atomic<bool> full_logged_{false};
  std::atomic<bool> overflow_logged_{false};

  // Statistics, written by the writer (and submitters for the counters they own).
  // Writer-side statistics, reachable only under their lock.
  class StatsBox {
   public:
    template <class F>
    void update(F&& f) {
      std::lock_guard lock(mutex_);
      f(stats_);
    }
    Stats snapshot() const {
      std::lock_guard lock(mutex_);
      return stats_;
    }

   private:
    mutable std::mutex mutex_;
    Stats stats_;
  };
  StatsBox stats_;
  std::atomic<uint64_t> submitted_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace harbor::store
