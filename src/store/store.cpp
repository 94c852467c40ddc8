#include "store/store.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "store/schema.hpp"

namespace harbor::store {
namespace {

namespace fs = std::filesystem;

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024ull * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / 1024.0);
  } else if (bytes < 1024ull * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / (1024.0 * 1024.0 * 1024.0));
  }
  return buf;
}

size_t histogram_bucket(uint64_t ops) {
  size_t bucket = 0;
  while (ops > 1 && bucket + 1 < Stats::kBuckets) {
    ops >>= 1;
    ++bucket;
  }
  return bucket;
}

// The message an op may add a row for (nullptr: none).
const broker::Message* message_of(const broker::PersistOp& op) {
  if (const auto* add = std::get_if<broker::OpQueueAdd>(&op)) return add->message.get();
  if (const auto* set = std::get_if<broker::OpRetainedSet>(&op)) return set->message.get();
  return nullptr;
}

// Whether `op` probably adds a message row: the first op of a submitting thread that
// refers to a message (the ops for one message arrive back to back from one shard). An
// estimate for the disk_cache_size bound; each commit replaces it with the real count.
bool adds_message(const broker::PersistOp& op) {
  thread_local broker::MessageId last_counted = 0;
  const broker::Message* m = message_of(op);
  if (m == nullptr || m->store_id == last_counted) return false;
  last_counted = m->store_id;
  return true;
}

}  // namespace

tl::expected<std::unique_ptr<Store>, std::string> Store::open(const StoreSettings& settings) {
  return open(settings, StoreOptions{});
}

tl::expected<std::unique_ptr<Store>, std::string> Store::open(const StoreSettings& settings,
                                                              const StoreOptions& options) {
  std::error_code ec;
  fs::create_directories(settings.directory, ec);
  if (ec) {
    return tl::unexpected(settings.directory + ": cannot create the database directory: " +
                          ec.message() + "; create it or set sqlite.mounted_file_path");
  }
  std::string path = (fs::path(settings.directory) / "harbormq.db").string();
  auto db = Db::open(path, options.vfs_name);
  if (!db) return tl::unexpected(db.error());
  sqlite3_busy_timeout(db->handle(), static_cast<int>(options.busy_timeout.count()));

  // The first statement reads the header: a file that is not a database fails here.
  auto mode = db->query_text("PRAGMA journal_mode = WAL");
  if (!mode) {
    int rc = mode.error();
    if ((rc & 0xFF) == SQLITE_NOTADB || (rc & 0xFF) == SQLITE_CORRUPT) {
      return tl::unexpected(path + ": not a usable SQLite database (" + db->error_message() +
                            "); move the file away to start with an empty store, or restore "
                            "it from a backup");
    }
    return tl::unexpected(path + ": cannot switch to WAL mode: " + db->error_message());
  }
  if (*mode != "wal") {
    return tl::unexpected(path + ": journal mode is \"" + *mode +
                          "\" instead of WAL; is the file on a file system without shared "
                          "memory support?");
  }
  const char* sync = settings.synchronous == SyncMode::Full ? "PRAGMA synchronous = FULL"
                                                            : "PRAGMA synchronous = NORMAL";
  // Foreign keys stay off: references are kept by the writer's own checks, and a broken
  // reference from a broker bug must not fail a whole group commit.
  for (const char* sql : {sync, "PRAGMA foreign_keys = OFF"}) {
    if (db->exec(sql) != SQLITE_OK) {
      return tl::unexpected(path + ": \"" + sql + "\" failed: " + db->error_message());
    }
  }
  // A new file gets incremental auto-vacuum before its first table (it cannot be switched
  // on afterwards without a VACUUM).
  auto tables = db->query_int("SELECT count(*) FROM sqlite_master");
  if (tables && *tables == 0 && db->exec("PRAGMA auto_vacuum = INCREMENTAL") != SQLITE_OK) {
    return tl::unexpected(path + ": cannot set auto_vacuum: " + db->error_message());
  }
  auto migrated = migrate_schema(*db, path);
  if (!migrated) return tl::unexpected(migrated.error());
  std::string vacuum_note;
  auto vacuum_mode = db->query_int("PRAGMA auto_vacuum");
  if (vacuum_mode && *vacuum_mode != 2) {
    std::error_code size_ec;
    const uint64_t bytes = fs::file_size(path, size_ec);
    if (!size_ec && bytes <= options.vacuum_convert_max_bytes) {
      if (db->exec("PRAGMA auto_vacuum = INCREMENTAL") != SQLITE_OK ||
          db->exec("VACUUM") != SQLITE_OK) {
        return tl::unexpected(
            path + ": cannot convert to incremental auto-vacuum: " + db->error_message());
      }
      vacuum_mode = db->query_int("PRAGMA auto_vacuum");
      vacuum_note = "converted to incremental auto-vacuum (one VACUUM of " +
                    std::to_string(bytes >> 10) + " KiB)";
    } else {
      vacuum_note =
          "made without incremental auto-vacuum and larger than " +
          std::to_string(options.vacuum_convert_max_bytes >> 20) +
          " MiB: its free pages are not given back (converted at a start when it is smaller)";
    }
  }

  auto max_id = db->query_int("SELECT coalesce(max(id), 0) FROM messages");
  auto count = db->query_int("SELECT value FROM counters WHERE name = 'messages'");
  if (!max_id || !count) {
    return tl::unexpected(path + ": cannot read the messages table: " + db->error_message());
  }
  // restore() only deletes messages, so ids handed out from max_id + 1 stay fresh.

  // The applier logs through the store, which does not exist yet: route via a holder.
  auto holder = std::make_shared<Store*>(nullptr);
  auto applier = OpApplier::create(*db, *max_id, [holder](const std::string& text) {
    if (*holder != nullptr) (*holder)->log(kLogWarn, text);
  });
  if (!applier) return tl::unexpected(path + ": " + applier.error());

  std::unique_ptr<Store> store(
      new Store(settings, options, path, std::move(*db), std::move(*applier)));
  *holder = store.get();
  store->incremental_vacuum_ = vacuum_mode && *vacuum_mode == 2;
  store->pending_open_note_ = std::move(vacuum_note);
  store->next_message_id_.store(static_cast<uint64_t>(*max_id) + 1);
  store->stored_messages_.store(*count);
  return store;
}

Store::Store(StoreSettings settings, StoreOptions options, std::string path, Db db,
             OpApplier applier)
    : settings_(std::move(settings)),
      options_(std::move(options)),
      path_(std::move(path)),
      db_(std::move(db)),
      applier_(std::move(applier)),
      reader_(path_, options_.vfs_name),
      disk_cache_size_(settings_.disk_cache_size),
      disk_cache_bytes_(settings_.disk_cache_bytes) {
  applier_.set_deferral(options_.deferred_max_age, options_.deferred_max_entries);
  applier_.set_removal_held([this](std::string_view client_id, uint64_t seq) {
    return !held_removals_.empty() && held_removals_.count(queue_entry_hash(client_id, seq)) != 0;
  });
  if (auto size = db_.query_int("PRAGMA page_size")) page_size_ = *size;
  measure_used_bytes();
}

void Store::set_disk_cache_size(uint64_t messages) {
  disk_cache_size_.store(messages, std::memory_order_relaxed);
}

void Store::set_disk_cache_bytes(uint64_t bytes) {
  disk_cache_bytes_.store(bytes, std::memory_order_relaxed);
}

void Store::measure_used_bytes() {
  auto pages = db_.query_int("PRAGMA page_count");
  auto free_pages = db_.query_int("PRAGMA freelist_count");
  if (!pages || !free_pages) return;
  used_bytes_.store(static_cast<uint64_t>(std::max<int64_t>(0, *pages - *free_pages) * page_size_),
                    std::memory_order_relaxed);
}

Store::~Store() { stop(); }

void Store::set_durable_listener(std::function<void(uint64_t)> listener) {
  durable_listener_ = std::move(listener);
}

void Store::set_log(std::function<void(int level, std::string_view)> log) { log_ = std::move(log); }

void Store::log(int level, std::string_view text) const {
  if (log_) {
    log_(level, text);
    return;
  }
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error"};
  const char* name = level >= 0 && level <= kLogError ? kNames[level] : "log";
  std::fprintf(stderr, "[store] %s: %.*s\n", name, static_cast<int>(text.size()), text.data());
}

void Store::start() {
  if (started_ || stopped_) return;
  started_ = true;
  auto checkpointer =
      Checkpointer::start(path_, options_.vfs_name, options_.busy_timeout,
                          [this](int level, std::string_view text) { log(level, text); });
  if (checkpointer) {
    checkpointer_ = std::move(*checkpointer);
    // Replaces SQLite's automatic checkpoint in the committing thread.
    sqlite3_wal_hook(db_.handle(), &Store::on_wal_commit, this);
  } else {
    log(kLogWarn, path_ + ": no checkpoint connection (" + checkpointer.error() +
                      "); the writer checkpoints the WAL itself");
  }
  if (!pending_open_note_.empty()) {
    log(incremental_vacuum_ ? kLogInfo : kLogWarn, path_ + ": " + pending_open_note_);
    pending_open_note_.clear();
  }
  vacuuming_ = vacuum_wanted();  // free pages left by an earlier run or by restore's cleanup
  writer_ = std::thread([this] { writer_loop(); });
}

void Store::stop() {
  if (stopped_) return;
  stopped_ = true;
  inbox_.request_stop();
  if (writer_.joinable()) {
    writer_.join();
  } else if (db_.handle() != nullptr) {
    // Never started: commit whatever was submitted on this thread.
    take_into_held();
    auto deadline = Inbox::Clock::now() + options_.retry_interval * 10;
    while (held_front_ < held_.size()) {
      if (!commit_front()) {
        if (Inbox::Clock::now() >= deadline) break;
        std::this_thread::sleep_for(options_.retry_interval);
      }
    }
  }
  if (held_front_ < held_.size()) {
    log(kLogError, path_ + ": stopped with " + std::to_string(held_.size() - held_front_) +
                       " operations that could not be stored (never reported durable)");
  }
  if (checkpointer_) checkpointer_->stop();  // kept: stats() still reads its count
  reader_.close();
  if (db_.handle() != nullptr) {
    checkpoint("TRUNCATE");
    db_ = Db();
  }
}

uint64_t Store::op_bytes(const broker::PersistOp& op) {
  uint64_t bytes = sizeof(PendingOp);
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, broker::OpQueueAdd> ||
                      std::is_same_v<T, broker::OpRetainedSet>) {
          // Counted in full for every op that holds the message: a conservative bound.
          if (o.message) {
            bytes += o.message->topic.size() + o.message->payload.size() +
                     o.message->forward_props.size();
          }
        } else if constexpr (std::is_same_v<T, broker::OpSessionUpsert>) {
          bytes += o.client_id.size();
          if (o.will) bytes += o.will->topic.size() + o.will->payload.size() + o.will->props.size();
        } else if constexpr (std::is_same_v<T, broker::OpSubscriptionAdd> ||
                             std::is_same_v<T, broker::OpSubscriptionRemove>) {
          bytes += o.client_id.size() + o.filter.size();
        } else if constexpr (std::is_same_v<T, broker::OpRetainedClear>) {
          bytes += o.topic.size();
        } else {
          bytes += o.client_id.size();
        }
      },
      op);
  return bytes;
}

uint64_t Store::submit(broker::PersistOp op) {
  PendingOp one{0, std::move(op), false};
  return submit_pending(&one, 1);
}

uint64_t Store::submit_batch(std::vector<broker::PersistOp> ops) {
  std::vector<PendingOp> pending;
  pending.reserve(ops.size());
  for (auto& op : ops) pending.push_back(PendingOp{0, std::move(op), false});
  return submit_pending(pending.data(), pending.size());
}

uint64_t Store::submit_pending(PendingOp* ops, size_t count) {
  uint64_t bytes = 0;
  int64_t adds = 0;
  for (size_t i = 0; i < count; ++i) {
    bytes += op_bytes(ops[i].op);
    ops[i].counted_add = adds_message(ops[i].op);
    if (ops[i].counted_add) ++adds;
  }
  // While commits fail, memory is the only copy: bound it. Past the bound the ops are
  // dropped and durable_seq freezes for good, so nothing dropped is ever reported durable.
  if (commit_failing() && (backlog_ops_.load() + count > options_.max_held_ops ||
                           backlog_bytes_.load() + bytes > options_.max_held_bytes)) {
    poisoned_.store(true);
    dropped_.fetch_add(count);
    if (!overflow_logged_.exchange(true)) {
      log(kLogError, path_ + ": commits keep failing and " + std::to_string(backlog_ops_.load()) +
                         " operations are held in memory; dropping further operations. "
                         "Nothing more is acknowledged as stored; restart the broker once "
                         "the disk is fixed");
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < std::max<size_t>(count, 1); ++i) seq = inbox_.skip_seq();
    return seq;
  }
  backlog_ops_.fetch_add(count);
  backlog_bytes_.fetch_add(bytes);
  submitted_.fetch_add(count, std::memory_order_relaxed);
  if (adds != 0) {
    int64_t now = stored_messages_.fetch_add(adds) + adds;
    uint64_t bound = disk_cache_size_.load(std::memory_order_relaxed);
    if (bound != 0 && now >= static_cast<int64_t>(bound)) {
      note_full();
    }
  }
  return inbox_.push(ops, count, std::max<size_t>(settings_.commit_batch, 1));
}

bool Store::read_queue(const std::string& client_id, uint64_t from_seq, size_t limit,
                       std::vector<broker::RestoredQueueEntry>& out, std::string& error) {
  auto got = reader_.read(client_id, from_seq, limit, out);
  if (!got) error = got.error();
  return got.has_value();
}

bool Store::full() const {
  uint64_t bound = disk_cache_size_.load(std::memory_order_relaxed);
  if (bound != 0 && stored_messages_.load(std::memory_order_relaxed) >= static_cast<int64_t>(bound))
    return true;
  uint64_t bytes = disk_cache_bytes_.load(std::memory_order_relaxed);
  return bytes != 0 && used_bytes_.load(std::memory_order_relaxed) >= bytes;
}

void Store::note_full() {
  if (!full_logged_.exchange(true)) {
    uint64_t bytes = disk_cache_bytes_.load(std::memory_order_relaxed);
    if (bytes != 0 && used_bytes_.load(std::memory_order_relaxed) >= bytes) {
      log(kLogWarn,
          path_ + ": " + std::to_string(used_bytes_.load(std::memory_order_relaxed) >> 10) +
              " KiB of database pages in use (sqlite.disk_cache_bytes = " + std::to_string(bytes) +
              "); refusing new QoS 1/2 messages that must be stored until receivers acknowledge "
              "some");
      return;
    }
    log(kLogWarn, path_ + ": " + std::to_string(disk_cache_size_.load(std::memory_order_relaxed)) +
                      " messages stored (sqlite.disk_cache_size); refusing new QoS 1/2 "
                      "messages that must be stored until receivers acknowledge some");
  }
}

void Store::count_refusal() {
  refusals_.fetch_add(1, std::memory_order_relaxed);
  if (full()) note_full();
}

void Store::checkpoint(const char* mode) {
  // The pragma's first column is "busy": 1 when it could not finish (the checkpointer
  // thread was in a checkpoint of its own, or a reader held the WAL). Then it is tried
  // again at the next idle checkpoint, TRUNCATE included.
  const bool truncate = std::string_view(mode) == "TRUNCATE";
  auto busy = db_.query_int(std::string("PRAGMA wal_checkpoint(") + mode + ")");
  if (!busy) {
    log(kLogWarn, path_ + ": WAL checkpoint (" + mode + ") failed: " + db_.error_message());
    return;
  }
  if (*busy != 0) {
    wrote_since_checkpoint_ = true;
    truncate_pending_ = truncate_pending_ || truncate;
    return;
  }
  if (truncate) truncate_pending_ = false;
  wrote_since_checkpoint_ = false;
  stats_.update([](Stats& s) { ++s.checkpoints; });
}

bool Store::take_into_held() {
  const size_t first = held_.size();
  const bool stopping = inbox_.take(held_);
  for (size_t i = first; i < held_.size(); ++i) {
    if (const auto* rm = std::get_if<broker::OpQueueRemove>(&held_[i].op))
      ++held_removals_[queue_entry_hash(rm->client_id, rm->seq)];
  }
  return stopping;
}

bool Store::commit_front() {
  size_t batch = std::max<size_t>(settings_.commit_batch, 1);
  size_t begin = held_front_;
  size_t end = std::min(held_.size(), begin + batch);
  OpApplier::BatchResult result;
  int rc = db_.exec("BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) {
    result = applier_.apply_batch(held_, begin, end);
    rc = result.rc;
    if (rc == SQLITE_OK) rc = db_.exec("COMMIT");
  }
  applier_.finish_batch(rc == SQLITE_OK);
  if (rc != SQLITE_OK) {
    std::string error = result.error.empty() ? db_.error_message() : result.error;
    if (db_.in_transaction()) db_.exec("ROLLBACK");
    stats_.update([](Stats& s) { ++s.failed_commits; });
    if (!commit_failing_.exchange(true)) {
      log(kLogError, path_ + ": cannot store " + std::to_string(end - begin) + " operations (" +
                         error +
                         "); not acknowledging new messages, "
                         "retrying every " +
                         std::to_string(options_.retry_interval.count()) + " ms");
    }
    return false;
  }

  uint64_t last_seq = held_[end - 1].seq;
  uint64_t bytes = 0;
  int64_t adds = 0;
  for (size_t i = begin; i < end; ++i) {
    bytes += op_bytes(held_[i].op);
    if (held_[i].counted_add) ++adds;
    if (const auto* rm = std::get_if<broker::OpQueueRemove>(&held_[i].op)) {
      auto it = held_removals_.find(queue_entry_hash(rm->client_id, rm->seq));
      if (it != held_removals_.end() && --it->second == 0) held_removals_.erase(it);
    }
    held_[i].op = broker::OpQos2InRemove{};  // release message references now
  }
  held_front_ = end;
  deferred_failed_ = false;
  backlog_ops_.fetch_sub(end - begin);
  backlog_bytes_.fetch_sub(bytes);
  // submit() counted every add as a new row; replace that guess with what happened.
  int64_t stored =
      stored_messages_.fetch_add(result.message_delta - adds) + result.message_delta - adds;
  uint64_t bound = disk_cache_size_.load(std::memory_order_relaxed);
  uint64_t byte_bound = disk_cache_bytes_.load(std::memory_order_relaxed);
  if (byte_bound != 0) {
    measure_used_bytes();
    if (used_bytes_.load(std::memory_order_relaxed) >= byte_bound) note_full();
  }
  const bool below_count = bound == 0 || stored < static_cast<int64_t>(bound) * 9 / 10;
  const bool below_bytes =
      byte_bound == 0 || used_bytes_.load(std::memory_order_relaxed) < byte_bound / 10 * 9;
  if ((bound != 0 || byte_bound != 0) && below_count && below_bytes && full_logged_.load()) {
    full_logged_.store(false);
    log(kLogInfo, path_ + ": below 90% of " +
                      (byte_bound == 0 ? "sqlite.disk_cache_size"
                       : bound == 0    ? "sqlite.disk_cache_bytes"
                                       : "sqlite.disk_cache_size and disk_cache_bytes") +
                      " again; accepting messages");
  }
  wrote_since_checkpoint_ = true;
  uint64_t ops = end - begin;
  stats_.update([&](Stats& s) {
    ++s.commits;
    s.committed_ops += ops;
    s.max_batch = std::max(s.max_batch, ops);
    ++s.batch_histogram[histogram_bucket(ops)];
    s.elided_ops += result.elided_ops;
    s.failed_ops += result.failed_ops;
  });
  if (wal_overgrown_) {
    wal_overgrown_ = false;
    checkpoint("PASSIVE");
  }
  if (commit_failing_.exchange(false)) {
    overflow_logged_.store(false);
    // Warn level, like the failure it ends: an operator who saw one must see the other.
    log(kLogWarn, path_ + ": storing again; the held operations are committed");
  }
  if (!poisoned_.load()) {
    durable_seq_.store(last_seq, std::memory_order_release);
    if (durable_listener_) durable_listener_(last_seq);
  }
  return true;
}

int Store::on_wal_commit(void* self, sqlite3*, const char*, int wal_frames) {
  // Far past the checkpointer's threshold it is not keeping up (or cannot finish while
  // commits keep coming): the writer checkpoints once itself.
  auto* store = static_cast<Store*>(self);
  if (wal_frames >= store->options_.checkpoint_frames) store->checkpointer_->request();
  if (wal_frames >= store->options_.writer_checkpoint_frames) store->wal_overgrown_ = true;
  return SQLITE_OK;
}

void Store::release_idle_memory() {
  if (held_front_ == held_.size()) {
    std::vector<PendingOp>().swap(held_);
    held_front_ = 0;
  }
  if (held_removals_.empty()) std::unordered_map<uint64_t, uint32_t>().swap(held_removals_);
  inbox_.release_memory();
  applier_.release_memory();
  sqlite3_db_release_memory(db_.handle());  // the page cache fills again with the next batch
  // glibc keeps freed memory in each thread's arena; what the shards freed after a drain
  // (message bodies, queue entries) is given back here, in the writer's idle time.
  malloc_trim(0);
}

void Store::commit_deferred() {
  if (!applier_.has_deferred() || commit_failing()) return;
  int rc = db_.exec("BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) rc = applier_.write_deferred();
  if (rc == SQLITE_OK) rc = db_.exec("COMMIT");
  if (rc != SQLITE_OK) {
    // Kept for the next batch, whose commit reports a storage failure as every batch does.
    log(kLogWarn, path_ + ": cannot store in-flight states (" + db_.error_message() +
                      "); retrying with the next batch");
    if (db_.in_transaction()) db_.exec("ROLLBACK");
    deferred_failed_ = true;
  } else {
    wrote_since_checkpoint_ = true;
  }
  applier_.finish_batch(rc == SQLITE_OK);
}

bool Store::vacuum_wanted() {
  if (!incremental_vacuum_) return false;
  auto free_pages = db_.query_int("PRAGMA freelist_count");
  auto pages = db_.query_int("PRAGMA page_count");
  return free_pages && pages && *free_pages >= options_.vacuum_min_free_pages &&
         *free_pages * 8 >= *pages;
}

bool Store::vacuum_step() {
  auto before = db_.query_int("PRAGMA freelist_count");
  if (db_.exec("PRAGMA incremental_vacuum(" + std::to_string(options_.vacuum_step_pages) + ")") !=
      SQLITE_OK) {
    log(kLogWarn, path_ + ": incremental vacuum failed: " + db_.error_message());
    return false;
  }
  auto after = db_.query_int("PRAGMA freelist_count");
  if (before && after && *before > *after) {
    const uint64_t freed = static_cast<uint64_t>(*before - *after);
    stats_.update([freed](Stats& st) { st.vacuumed_pages += freed; });
  }
  wrote_since_checkpoint_ = true;
  return after && *after > 0 && (!before || *after < *before);
}

void Store::writer_loop() {
  using Clock = Inbox::Clock;
  auto last_write = Clock::now();
  auto next_retry = Clock::now();
  std::optional<Clock::time_point> give_up_at;
  const size_t batch = std::max<size_t>(settings_.commit_batch, 1);
  for (;;) {
    bool have_held = held_front_ < held_.size();
    if (have_held && commit_failing()) {
      // Keep collecting while waiting for the next retry; stop() wakes us.
      inbox_.wait_for(SIZE_MAX, next_retry);
    } else if (!have_held) {
      const bool deferred = applier_.has_deferred() && !deferred_failed_;
      auto idle_until = deferred                  ? last_write + options_.deferred_wait
                        : vacuuming_              ? Clock::now() + options_.vacuum_pause
                        : wrote_since_checkpoint_ ? last_write + options_.idle_checkpoint
                                                  : Clock::now() + std::chrono::hours(1);
      inbox_.wait_for(1, idle_until);
      if (inbox_.size() == 0 && Clock::now() >= idle_until) {
        if (deferred) {
          commit_deferred();
          last_write = Clock::now();
        } else if (vacuuming_) {
          // Idle time only: one step, then whatever arrived is committed first.
          vacuuming_ = vacuum_step();
          if (!vacuuming_) {
            checkpoint("TRUNCATE");  // the WAL gives its space back too
            release_idle_memory();
          }
        } else if (wrote_since_checkpoint_) {
          checkpoint(truncate_pending_ ? "TRUNCATE" : "PASSIVE");
          vacuuming_ = vacuum_wanted();
          release_idle_memory();
        }
        if (wrote_since_checkpoint_ && !vacuuming_) last_write = Clock::now();  // busy: later
      }
      // Group commit: let the batch fill for commit_interval, or until it is full.
      if (inbox_.size() != 0 && settings_.commit_interval.count() > 0) {
        inbox_.wait_for(batch, Clock::now() + settings_.commit_interval);
      }
    }
    bool stopping = take_into_held();
    if (stopping && !give_up_at) give_up_at = Clock::now() + options_.retry_interval * 10;

    if (!commit_failing() || Clock::now() >= next_retry || stopping) {
      while (held_front_ < held_.size()) {
        if (!commit_front()) {
          next_retry = Clock::now() + options_.retry_interval;
          if (stopping) std::this_thread::sleep_until(std::min(next_retry, *give_up_at));
          break;
        }
        last_write = Clock::now();
      }
    }
    if (held_front_ == held_.size()) {
      held_.clear();
      held_front_ = 0;
    } else if (held_front_ > 4096 && held_front_ * 2 > held_.size()) {
      held_.erase(held_.begin(), held_.begin() + static_cast<ptrdiff_t>(held_front_));
      held_front_ = 0;
    }
    if (stopping && (held_.empty() || Clock::now() >= *give_up_at)) {
      // A last take: anything submitted concurrently with stop() is committed by stop()'s
      // caller contract (submitters must be quiet by then), but do not lose it either.
      take_into_held();
      if (held_front_ == held_.size()) {
        commit_deferred();
        return;
      }
      if (Clock::now() >= *give_up_at) return;
    }
  }
}

Stats Store::stats() const {
  Stats s = stats_.snapshot();
  if (checkpointer_) s.checkpoints += checkpointer_->checkpoints();
  s.submitted_ops = submitted_.load(std::memory_order_relaxed);
  s.refusals = refusals_.load(std::memory_order_relaxed);
  s.dropped_ops = dropped_.load(std::memory_order_relaxed);
  s.stored_messages = static_cast<uint64_t>(std::max<int64_t>(stored_messages_.load(), 0));
  s.used_bytes = used_bytes_.load(std::memory_order_relaxed);
  s.queued_ops = backlog_ops_.load();
  s.durable_seq = durable_seq();
  s.degraded = commit_failing();
  s.full = full();
  return s;
}

DiskUsage Store::usage() const {
  DiskUsage u;
  std::error_code ec;
  auto db_size = fs::file_size(path_, ec);
  if (!ec) u.db_bytes = db_size;
  auto wal_size = fs::file_size(path_ + "-wal", ec);
  if (!ec) u.wal_bytes = wal_size;
  return u;
}

std::string Store::describe_size() const {
  DiskUsage u = usage();
  return path_ + " " + format_bytes(u.db_bytes) + ", WAL " + format_bytes(u.wal_bytes);
}

}  // namespace harbor::store
