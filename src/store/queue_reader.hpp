// Reads stored queue entries back for the senders: beyond its bounded in-memory head, a
// persistent session's queue lives only in the database (docs/persistence.md, "Queues on
// disk"), and a shard pages the next entries in when its head runs low.
//
// Each calling thread gets a read-only connection of its own, opened on first use and kept
// until close(). It reads through the writer's WAL, so it sees what the writer has
// committed and never the batch being written; the writer's connection is never touched.
//
// Threads: read() from any thread (each uses its own connection); close() from the owner
// once no thread reads any more.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tl/expected.hpp>
#include <unordered_map>
#include <vector>

#include "broker/ports.hpp"
#include "store/sqlite_db.hpp"

namespace harbor::store {

// The columns of a message row, in the order decode_message() reads them.
inline constexpr std::string_view kMessageColumns =
    "m.id, m.topic, m.payload, m.qos, m.retain, m.props, m.expires_at_ms, m.received_at_ms";
// The columns of a queue row joined with its message, in the order decode_entry() reads.
inline constexpr std::string_view kQueueEntryColumns =
    "q.seq, q.qos, q.retain, q.sub_ids, q.state, q.packet_id, q.shared_filter, m.id, m.topic, "
    "m.payload, m.qos, m.retain, m.props, m.expires_at_ms, m.received_at_ms";

// The message whose kMessageColumns start at column `first` of the current row.
broker::MessagePtr decode_message(const Statement& row, int first);

// Builds the entry of the current row of a statement selecting kQueueEntryColumns first.
// `messages` (if not null) shares one MessagePtr between the entries that refer to one
// message (restore: many sessions); a page of one session's queue needs none.
broker::RestoredQueueEntry decode_entry(const Statement& row,
                                        std::unordered_map<int64_t, broker::MessagePtr>* messages);

class QueueReader {
 public:
  // Page cache of each reading connection (KiB).
  static constexpr int kReaderCacheKiB = 256;
  QueueReader(std::string path, std::string vfs) : path_(std::move(path)), vfs_(std::move(vfs)) {}
  QueueReader(const QueueReader&) = delete;
  QueueReader& operator=(const QueueReader&) = delete;

  // Appends to `out` up to `limit` committed entries of `client_id` with seq >= from_seq,
  // in seq order; the error text on failure.
  tl::expected<void, std::string> read(std::string_view client_id, uint64_t from_seq, size_t limit,
                                       std::vector<broker::RestoredQueueEntry>& out);
  // Closes every connection. The owner, when no thread reads any more.
  void close();
  size_t connections() const;

 private:
  struct Connection {
    Db db;
    Statement select;
  };
  tl::expected<Connection*, std::string> connection_of_this_thread();

  const std::string path_;
  const std::string vfs_;
  mutable std::mutex mutex_;  // guards the map, not the connections (one thread each)
  std::unordered_map<std::thread::id, std::unique_ptr<Connection>> connections_;
};

}  // namespace harbor::store
