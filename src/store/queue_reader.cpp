#include "store/queue_reader.hpp"

#include <algorithm>

#include "store/op_applier.hpp"

namespace harbor::store {

broker::MessagePtr decode_message(const Statement& row, int first) {
  auto m = std::make_shared<broker::Message>();
  m->store_id = static_cast<broker::MessageId>(row.column_int(first));
  m->topic = row.column_text(first + 1);
  m->payload = row.column_text(first + 2);
  m->qos = static_cast<mqtt::QoS>(row.column_int(first + 3));
  m->retain = row.column_int(first + 4) != 0;
  m->forward_props = row.column_text(first + 5);
  m->expires_at_ms = row.column_int(first + 6);
  m->received_at_ms = row.column_int(first + 7);
  return m;
}

broker::RestoredQueueEntry decode_entry(const Statement& row,
                                        std::unordered_map<int64_t, broker::MessagePtr>* messages) {
  broker::RestoredQueueEntry e;
  e.seq = static_cast<uint64_t>(row.column_int(0));
  e.qos = static_cast<mqtt::QoS>(row.column_int(1));
  e.retain = row.column_int(2) != 0;
  e.subscription_ids = decode_sub_ids(row.column_text(3));
  e.state = static_cast<broker::OutState>(row.column_int(4));
  e.packet_id = static_cast<uint16_t>(row.column_int(5));
  e.shared_filter = row.column_text(6);  // "" for NULL
  const int64_t id = row.column_int(7);
  if (messages != nullptr) {
    if (auto it = messages->find(id); it != messages->end()) {
      e.message = it->second;
      return e;
    }
  }
  e.message = decode_message(row, 7);
  if (messages != nullptr) messages->emplace(id, e.message);
  return e;
}

tl::expected<QueueReader::Connection*, std::string> QueueReader::connection_of_this_thread() {
  std::lock_guard lock(mutex_);
  auto& slot = connections_[std::this_thread::get_id()];
  if (slot) return slot.get();
  auto db = Db::open_read_only(path_, vfs_);
  if (!db) {
    connections_.erase(std::this_thread::get_id());
    return tl::unexpected(db.error());
  }
  // Pages are read once, in seq order: a small page cache (SQLite's default is 2 MB per
  // connection, one connection per shard) does not slow the paging.
  db->exec("PRAGMA cache_size = -" + std::to_string(kReaderCacheKiB));
  auto select = db->prepare("SELECT " + std::string(kQueueEntryColumns) +
                            " FROM queue q JOIN messages m ON m.id = q.message_id"
                            " WHERE q.client_id = ?1 AND q.seq >= ?2 ORDER BY q.seq LIMIT ?3");
  if (!select) {
    std::string text = path_ + ": cannot prepare the queue read: " + db->error_message();
    connections_.erase(std::this_thread::get_id());
    return tl::unexpected(text);
  }
  slot = std::make_unique<Connection>(Connection{std::move(*db), std::move(*select)});
  return slot.get();
}

tl::expected<void, std::string> QueueReader::read(std::string_view client_id, uint64_t from_seq,
                                                  size_t limit,
                                                  std::vector<broker::RestoredQueueEntry>& out) {
  auto conn = connection_of_this_thread();
  if (!conn) return tl::unexpected(conn.error());
  Statement& s = (*conn)->select;
  s.bind_text_ref(1, client_id);
  s.bind(2, static_cast<int64_t>(from_seq));
  s.bind(3, static_cast<int64_t>(limit));
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(decode_entry(s, nullptr));
  s.reset();
  if (rc != SQLITE_DONE) {
    return tl::unexpected(path_ + ": reading the queue of '" + std::string(client_id) +
                          "' failed: " + (*conn)->db.error_message());
  }
  return {};
}

void QueueReader::close() {
  std::lock_guard lock(mutex_);
  connections_.clear();
}

size_t QueueReader::connections() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

}  // namespace harbor::store
