// Applies persistence operations to the database with statements prepared once.
// Owned and called only by the store's writer thread (after Store::restore on the opening
// thread has finished with the connection). The caller wraps apply_batch in a transaction
// and reports how it ended with finish_batch.
//
// Message rows carry their reference count (messages.refs: queue rows + retained rows), so
// releasing a reference never searches the queue table and the writer keeps no per-message
// state between batches. Within a batch the changes are summed per message id (RefTable)
// and written at its end: a message whose every reference is added and removed inside one
// batch is never written at all, and a drained run of ids is deleted with one statement.
// Rows of one kind are written with multi-row INSERT statements (kChunk rows per statement).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/ports.hpp"
#include "store/ref_table.hpp"
#include "store/sqlite_db.hpp"

namespace harbor::store {

// One submitted op with its global sequence number.
struct PendingOp {
  uint64_t seq = 0;
  broker::PersistOp op;
  bool counted_add = false;  // counted as a new message row by submit (an estimate)
};

// The key of a queue entry as one number (client id and seq hashed), for the writer's
// index of the removals it holds.
inline uint64_t queue_entry_hash(std::string_view client_id, uint64_t seq) {
  return std::hash<std::string_view>()(client_id) * 0x9E3779B97F4A7C15ull ^
         (seq + 0x632BE59BD9B4E019ull);
}

class OpApplier {
 public:
  using ErrorLog = std::function<void(const std::string&)>;
  // Rows per multi-row statement.
  static constexpr size_t kChunk = 32;
  // Consecutive message ids deleted with one range statement from this many on.
  static constexpr size_t kMinRange = 4;

  // Prepares every statement; the error is the SQLite message. `max_message_id`: the highest
  // id in the messages table (ids above it are inserted without a conflict check).
  static tl::expected<OpApplier, std::string> create(Db& db, int64_t max_message_id,
                                                     ErrorLog on_op_error);

  struct BatchResult {
    int rc = SQLITE_OK;         // SQLITE_OK or the storage error that aborted the batch
    std::string error;          // the connection's message for rc
    int64_t message_delta = 0;  // message rows inserted minus deleted (valid if committed)
    uint64_t elided_ops = 0;    // queue add, update and remove ops of entries that never got a row
    uint64_t failed_ops = 0;    // ops skipped for a non-storage error (logged)
  };

  // Applies ops[begin, end) in order. Stops at the first storage error (full disk, I/O):
  // the caller rolls back and retries the whole range later. An op that fails for any
  // other reason (a constraint, a broker bug) is logged, counted and skipped, because
  // retrying it would fail forever and block everything behind it.
  BatchResult apply_batch(const std::vector<PendingOp>& ops, size_t begin, size_t end);
  // Ends the batch, however its transaction ended (the counts roll back with it, and the
  // updates it deferred are taken up again by the retry).
  void finish_batch(bool committed);

  // A QoS 1 entry's "sent, awaiting PUBACK" state, for a row stored by an earlier batch, is
  // held back: a drain through a deep in-flight window gets its PUBACKs some hundred ms
  // after the send, and then the row is deleted without the UPDATE. A deferred state is
  // written by the first batch that ends `max_age` after the batch that deferred it, or
  // earlier when more than `max_entries` are held (oldest first), or by write_deferred
  // (writer idle, stop). A crash before that resends the message as new, which QoS 1
  // allows. QoS 2 states never wait.
  void set_deferral(std::chrono::milliseconds max_age, size_t max_entries) {
    deferred_max_age_ = max_age;
    deferred_max_entries_ = max_entries;
  }
  bool has_deferred() const { return !deferred_.empty() || !new_deferred_.empty(); }
  // Asked before a due state is written: true when the entry's removal is already
  // submitted (held by the writer for a later batch); the state is then dropped unwritten.
  void set_removal_held(std::function<bool(std::string_view, uint64_t)> held) {
    removal_held_ = std::move(held);
  }
  // Frees the deferral's tables when nothing is deferred (writer idle).
  void release_memory();
  // Writes every deferred state in the caller's transaction; forgotten by finish_batch(true).
  int write_deferred();

 private:
  OpApplier(Db& db, ErrorLog on_op_error)
      : db_(db.handle()), on_op_error_(std::move(on_op_error)) {}

  // (client_id, seq) of a queue entry; the view points into ops that outlive the lookup.
  struct QueueKey {
    std::string_view client_id;
    uint64_t seq;
    bool operator==(const QueueKey&) const = default;
  };
  struct QueueKeyHash {
    size_t operator()(const QueueKey& k) const {
      return std::hash<std::string_view>()(k.client_id) ^ (std::hash<uint64_t>()(k.seq) * 31);
    }
  };
  // A deferred state's entry: its client id as an index into deferred_clients_ (each id
  // stored once, however many of its entries wait), and its seq.
  struct DeferredKey {
    uint32_t client;
    uint64_t seq;
    bool operator==(const DeferredKey&) const = default;
  };
  struct DeferredKeyHash {
    size_t operator()(const DeferredKey& k) const {
      return std::hash<uint64_t>()(k.seq * 0x9E3779B97F4A7C15ull ^ k.client);
    }
  };
  static constexpr uint32_t kNoClient = 0xFFFFFFFF;
  struct Deferred {
    int state = 0;
    int packet_id = 0;
    uint64_t batch = 0;  // the batch that deferred it (tells a live order entry from a stale one)
  };
  using DeferredMap = std::unordered_map<DeferredKey, Deferred, DeferredKeyHash>;
  // Deferral order: each committed deferral once, oldest first; an entry whose key is gone
  // from deferred_ (or deferred again by a later batch) is stale and skipped.
  struct DeferredAge {
    DeferredKey key;
    uint64_t batch;
    std::chrono::steady_clock::time_point at;
  };
  // Drops the deferred state of (client_id, seq); true if there was one.
  bool forget_deferred(const QueueKey& key);
  // The index of client_id in deferred_clients_; kNoClient if it has none and !add.
  uint32_t deferred_client(std::string_view client_id, bool add);
  // Drops the ids of clients without deferred states (their count is bounded by twice the
  // deferred states, from kMinClientsToCompact on).
  void compact_deferred_clients();
  static constexpr size_t kMinClientsToCompact = 1024;
  int write_update(const DeferredKey& key, const Deferred& d);
  // Writes the deferred states that are due (aged, or over the count bound); they leave
  // deferred_ when the batch commits.
  int write_due_deferred(BatchResult& result);
  using Ref = RefTable::Ref;
  // A queue row waiting for the end of the batch; views point into the batch's ops.
  struct QueueRow {
    std::string_view client_id;
    uint64_t seq = 0;
    int64_t message = 0;
    int qos = 0;
    bool retain = false;
    const std::vector<uint32_t>* subscription_ids = nullptr;
    int state = 0;
    int packet_id = 0;
    bool live = true;
    uint32_t ops = 1;                // the add and the updates folded into this row
    std::string_view shared_filter;  // empty: stored as NULL
  };

  int apply(const broker::PersistOp& op, BatchResult& result);
  void reference(const broker::Message& m);
  void release(int64_t message_id);
  RefTable::Ref& touch(int64_t message_id);
  // Steps a bound "DELETE … RETURNING message_id" to its end, releasing each returned id.
  int release_returned(Statement& s);
  // Writes what the batch left pending: new messages, queue rows, deletions.
  int flush_queue_rows();
  int flush_removals();
  // Deletes removals_ (sorted) with their message ids known, in one savepoint: false (and
  // nothing changed) when a run deleted fewer rows than it names.
  int delete_known_runs(bool& all_found);
  // Binds s to each run of consecutive seqs of one client in removals_ (client, first, last)
  // and calls step(s, rows named by the run); stops at the first error.
  template <typename Step>
  int for_each_run(Statement& s, Step step);
  int flush_messages(BatchResult& result);
  int insert_messages(BatchResult& result);
  int release_messages(BatchResult& result);
  void clear_pending();

  int on(const broker::OpSessionUpsert& op, BatchResult& result);
  int on(const broker::OpSessionDelete& op, BatchResult& result);
  int on(const broker::OpSubscriptionAdd& op, BatchResult& result);
  int on(const broker::OpSubscriptionRemove& op, BatchResult& result);
  int on(const broker::OpQueueAdd& op, BatchResult& result);
  int on(const broker::OpQueueShared& op, BatchResult& result);
  int on(const broker::OpQueueUpdate& op, BatchResult& result);
  int on(const broker::OpQueueRemove& op, BatchResult& result);
  int on(const broker::OpQos2InAdd& op, BatchResult& result);
  int on(const broker::OpQos2InRemove& op, BatchResult& result);
  int on(const broker::OpRetainedSet& op, BatchResult& result);
  int on(const broker::OpRetainedClear& op, BatchResult& result);

  sqlite3* db_;  // the connection handle (stable when the owning Db object moves)
  ErrorLog on_op_error_;
  Statement insert_message_;         // one row, RETURNING id when inserted
  Statement insert_messages_;        // kChunk rows, the same
  Statement insert_fresh_message_;   // one row above every id inserted before: plain INSERT
  Statement insert_fresh_messages_;  // kChunk such rows
  // The highest message id this applier (or the file, at open) ever inserted; rows above it
  // cannot exist yet. INT64_MAX after a conflict proved otherwise: every insert is checked.
  int64_t max_inserted_id_ = 0;
  Statement add_refs_;               // refs += ?2 for id ?1 (a message already stored)
  Statement delete_message_;         // id ?1 if refs <= ?2
  Statement release_message_;        // refs -= ?2 for id ?1
  Statement delete_messages_;        // kChunk ids whose refs <= 1
  Statement release_messages_;       // refs -= 1 for kChunk ids
  Statement delete_message_range_;   // consecutive ids whose refs <= 1
  Statement release_message_range_;  // refs -= 1 for consecutive ids
  Statement count_messages_;         // counters.messages += ?1
  Statement upsert_session_;
  Statement delete_session_;
  Statement delete_session_subs_;
  Statement delete_session_qos2_;
  Statement delete_session_queue_;
  Statement upsert_sub_;
  Statement delete_sub_;
  Statement insert_queue_;   // one row
  Statement insert_queues_;  // kChunk rows
  Statement update_queue_;
  Statement update_shared_;
  Statement delete_queue_range_;  // consecutive seqs of one client, RETURNING message_id
  Statement delete_queue_run_;    // the same without RETURNING (message ids known)
  Statement savepoint_;
  Statement savepoint_release_;
  Statement savepoint_rollback_;
  Statement insert_qos2_;
  Statement delete_qos2_;
  Statement select_retained_;
  Statement upsert_retained_;
  Statement delete_retained_;

  // Pending for the end of the open batch.
  RefTable refs_;                 // message id -> reference change in this batch
  std::vector<int64_t> touched_;  // the ids in refs_, in the order first touched
  std::vector<QueueRow> queue_rows_;
  std::unordered_map<QueueKey, size_t, QueueKeyHash> queue_row_index_;  // key -> queue_rows_
  // State changes of rows stored by earlier batches, run at the end of the batch: an entry
  // acknowledged in the same batch is deleted without its UPDATE (a queue drain sends and
  // removes most entries within one batch).
  std::unordered_map<QueueKey, std::pair<int, int>, QueueKeyHash> row_updates_;
  struct Removal {
    QueueKey key;
    int64_t message_id = 0;  // 0: not known, read back from the deleted row
  };
  std::vector<Removal> removals_;  // rows stored by earlier batches, removed by this one
  // Deferred AwaitPuback states: from committed batches, and from this batch (they join
  // deferred_ and deferred_order_ when it commits).
  DeferredMap deferred_;
  DeferredMap new_deferred_;
  std::deque<DeferredAge> deferred_order_;
  std::deque<std::string> deferred_clients_;  // stable: the index below views into it
  std::unordered_map<std::string_view, uint32_t> deferred_client_index_;
  std::string_view last_client_;  // the last lookup (ops come in runs of one client)
  uint32_t last_client_slot_ = kNoClient;
  size_t due_written_ = 0;  // front entries of deferred_order_ this batch wrote (or skipped)
  bool wrote_all_deferred_ = false;  // write_deferred ran in this transaction
  uint64_t batch_no_ = 0;
  std::chrono::milliseconds deferred_max_age_{500};
  size_t deferred_max_entries_ = 65536;
  std::function<bool(std::string_view, uint64_t)> removal_held_;
  std::vector<int64_t> scratch_ids_;
  std::vector<int64_t> scratch_returned_;
  std::vector<std::string> scratch_blobs_;
};

// Subscription identifiers as stored in queue.sub_ids: 4 bytes little-endian each.
std::string encode_sub_ids(const std::vector<uint32_t>& ids);
std::vector<uint32_t> decode_sub_ids(std::string_view blob);

}  // namespace harbor::store
