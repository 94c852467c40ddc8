// Applies persistence operations to the database with statements prepared once.
// Owned and called only by the store's writer thread (after Store::restore on the opening
// thread has finished with the connection). The caller wraps apply_batch in a transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "broker/ports.hpp"
#include "store/sqlite_db.hpp"

namespace harbor::store {

// One submitted op with its global sequence number.
struct PendingOp {
  uint64_t seq = 0;
  broker::PersistOp op;
};

class OpApplier {
 public:
  using ErrorLog = std::function<void(const std::string&)>;

  // Prepares every statement; the error is the SQLite message.
  static tl::expected<OpApplier, std::string> create(Db& db, ErrorLog on_op_error);

  struct BatchResult {
    int rc = SQLITE_OK;          // SQLITE_OK or the storage error that aborted the batch
    std::string error;           // the connection's message for rc
    int64_t message_delta = 0;   // message rows inserted minus deleted (valid if committed)
    uint64_t elided_ops = 0;     // queue add ... remove pairs that never touched a table
    uint64_t failed_ops = 0;     // ops skipped for a non-storage error (logged)
  };

  // Applies ops[begin, end) in order. Stops at the first storage error (full disk, I/O):
  // the caller rolls back and retries the whole range later. An op that fails for any
  // other reason (a constraint, a broker bug) is logged, counted and skipped, because
  // retrying it would fail forever and block everything behind it.
  BatchResult apply_batch(const std::vector<PendingOp>& ops, size_t begin, size_t end);

 private:
  OpApplier(Db& db, ErrorLog on_op_error) : db_(db.handle()), on_op_error_(std::move(on_op_error)) {}

  int apply(const broker::PersistOp& op, BatchResult& result);
  int insert_message(const broker::Message& m, BatchResult& result);
  int collect_message_garbage(int64_t message_id, BatchResult& result);

  int on(const broker::OpSessionUpsert& op, BatchResult& result);
  int on(const broker::OpSessionDelete& op, BatchResult& result);
  int on(const broker::OpSubscriptionAdd& op, BatchResult& result);
  int on(const broker::OpSubscriptionRemove& op, BatchResult& result);
  int on(const broker::OpMessageAdd& op, BatchResult& result);
  int on(const broker::OpQueueAdd& op, BatchResult& result);
  int on(const broker::OpQueueUpdate& op, BatchResult& result);
  int on(const broker::OpQueueRemove& op, BatchResult& result);
  int on(const broker::OpQos2InAdd& op, BatchResult& result);
  int on(const broker::OpQos2InRemove& op, BatchResult& result);
  int on(const broker::OpRetainedSet& op, BatchResult& result);
  int on(const broker::OpRetainedClear& op, BatchResult& result);

  sqlite3* db_;  // the connection handle (stable when the owning Db object moves)
  ErrorLog on_op_error_;
  Statement insert_message_;
  Statement gc_message_;
  Statement upsert_session_;
  Statement delete_session_;
  Statement delete_session_subs_;
  Statement delete_session_qos2_;
  Statement delete_session_queue_;
  Statement upsert_sub_;
  Statement delete_sub_;
  Statement insert_queue_;
  Statement update_queue_;
  Statement delete_queue_;
  Statement insert_qos2_;
  Statement delete_qos2_;
  Statement select_retained_;
  Statement upsert_retained_;
  Statement delete_retained_;
  std::vector<int64_t> scratch_ids_;
  std::vector<uint8_t> skip_;
};

// Subscription identifiers as stored in queue.sub_ids: 4 bytes little-endian each.
std::string encode_sub_ids(const std::vector<uint32_t>& ids);
std::vector<uint32_t> decode_sub_ids(std::string_view blob);

}  // namespace harbor::store
