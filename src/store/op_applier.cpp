#include "store/op_applier.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace harbor::store {
namespace {

// (client_id, seq) of a queue entry; the views point into ops that outlive the lookup.
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

int finish(Statement& stmt) {
  int rc = stmt.run();
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

}  // namespace

std::string encode_sub_ids(const std::vector<uint32_t>& ids) {
  std::string out;
  out.reserve(ids.size() * 4);
  for (uint32_t id : ids) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((id >> shift) & 0xFF));
  }
  return out;
}

std::vector<uint32_t> decode_sub_ids(std::string_view blob) {
  std::vector<uint32_t> ids;
  ids.reserve(blob.size() / 4);
  for (size_t i = 0; i + 4 <= blob.size(); i += 4) {
    uint32_t id = 0;
    for (int b = 0; b < 4; ++b) id |= static_cast<uint32_t>(static_cast<uint8_t>(blob[i + b])) << (8 * b);
    ids.push_back(id);
  }
  return ids;
}

tl::expected<OpApplier, std::string> OpApplier::create(Db& db, ErrorLog on_op_error) {
  OpApplier a(db, std::move(on_op_error));
  struct Entry {
    Statement* stmt;
    const char* sql;
  };
  const Entry entries[] = {
      {&a.insert_message_,
       "INSERT OR IGNORE INTO messages(id, topic, payload, qos, retain, props, expires_at_ms, "
       "received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      // Reference checks go through queue_message and retained_message, never blobs.
      {&a.gc_message_,
       "DELETE FROM messages WHERE id = ?1 "
       "AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = ?1) "
       "AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = ?1)"},
      {&a.upsert_session_,
       "INSERT OR REPLACE INTO sessions(client_id, version, expiry_s, last_seen_ms, will_topic, "
       "will_payload, will_qos, will_retain, will_props, will_delay_s, will_expiry_s) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
      {&a.delete_session_, "DELETE FROM sessions WHERE client_id = ?1"},
      {&a.delete_session_subs_, "DELETE FROM subscriptions WHERE client_id = ?1"},
      {&a.delete_session_qos2_, "DELETE FROM qos2_in WHERE client_id = ?1"},
      {&a.delete_session_queue_, "DELETE FROM queue WHERE client_id = ?1 RETURNING message_id"},
      {&a.upsert_sub_,
       "INSERT OR REPLACE INTO subscriptions(client_id, filter, qos, no_local, "
       "retain_as_published, retain_handling, subscription_id) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&a.delete_sub_, "DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2"},
      {&a.insert_queue_,
       "INSERT OR REPLACE INTO queue(client_id, seq, message_id, qos, retain, sub_ids, state, "
       "packet_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)"},
      {&a.update_queue_,
       "UPDATE queue SET state = ?3, packet_id = ?4 WHERE client_id = ?1 AND seq = ?2"},
      {&a.delete_queue_,
       "DELETE FROM queue WHERE client_id = ?1 AND seq = ?2 RETURNING message_id"},
      {&a.insert_qos2_, "INSERT OR IGNORE INTO qos2_in(client_id, packet_id) VALUES (?1, ?2)"},
      {&a.delete_qos2_, "DELETE FROM qos2_in WHERE client_id = ?1 AND packet_id = ?2"},
      {&a.select_retained_, "SELECT message_id FROM retained WHERE topic = ?1"},
      {&a.upsert_retained_, "INSERT OR REPLACE INTO retained(topic, message_id) VALUES (?1, ?2)"},
      {&a.delete_retained_, "DELETE FROM retained WHERE topic = ?1 RETURNING message_id"},
  };
  for (const Entry& e : entries) {
    auto stmt = db.prepare(e.sql);
    if (!stmt) return tl::unexpected(std::string("cannot prepare \"") + e.sql + "\": " + db.error_message());
    *e.stmt = std::move(*stmt);
  }
  return a;
}

OpApplier::BatchResult OpApplier::apply_batch(const std::vector<PendingOp>& ops, size_t begin,
                                              size_t end) {
  BatchResult result;
  // A queue entry added and removed inside this batch (acknowledged before its commit)
  // never needs a row: skip the add, its updates and the remove. The remove still runs the
  // reference check on its message, in its original position.
  skip_.assign(end - begin, 0);
  std::unordered_map<QueueKey, std::vector<size_t>, QueueKeyHash> open_entries;
  for (size_t i = begin; i < end; ++i) {
    const broker::PersistOp& op = ops[i].op;
    if (const auto* add = std::get_if<broker::OpQueueAdd>(&op)) {
      open_entries[QueueKey{add->client_id, add->seq}] = {i};
    } else if (const auto* upd = std::get_if<broker::OpQueueUpdate>(&op)) {
      auto it = open_entries.find(QueueKey{upd->client_id, upd->seq});
      if (it != open_entries.end()) it->second.push_back(i);
    } else if (const auto* rem = std::get_if<broker::OpQueueRemove>(&op)) {
      auto it = open_entries.find(QueueKey{rem->client_id, rem->seq});
      if (it != open_entries.end()) {
        for (size_t j : it->second) skip_[j - begin] = 1;
        skip_[i - begin] = 2;  // 2: run only the reference check of the add's message
        open_entries.erase(it);
      }
    } else if (const auto* del = std::get_if<broker::OpSessionDelete>(&op)) {
      // The session delete removes the rows itself; do not elide across it.
      std::erase_if(open_entries, [&](const auto& kv) { return kv.first.client_id == del->client_id; });
    }
  }

  // The message of an elided pair: remembered from the add, used by the remove.
  std::unordered_map<QueueKey, int64_t, QueueKeyHash> elided_message;
  for (size_t i = begin; i < end; ++i) {
    const broker::PersistOp& op = ops[i].op;
    int rc = SQLITE_OK;
    uint8_t skip = skip_[i - begin];
    if (skip == 1) {
      ++result.elided_ops;
      if (const auto* add = std::get_if<broker::OpQueueAdd>(&op)) {
        elided_message[QueueKey{add->client_id, add->seq}] = static_cast<int64_t>(add->message);
      }
      continue;
    }
    if (skip == 2) {
      ++result.elided_ops;
      const auto& rem = std::get<broker::OpQueueRemove>(op);
      auto it = elided_message.find(QueueKey{rem.client_id, rem.seq});
      if (it != elided_message.end()) rc = collect_message_garbage(it->second, result);
    } else {
      rc = apply(op, result);
    }
    if (rc == SQLITE_OK) continue;
    if (is_storage_error(rc)) {
      result.rc = rc;
      result.error = std::string(sqlite3_errmsg(db_));
      return result;
    }
    ++result.failed_ops;
    if (on_op_error_) {
      on_op_error_("op seq " + std::to_string(ops[i].seq) + " (kind " +
                   std::to_string(op.index()) + ") skipped: " + std::string(sqlite3_errmsg(db_)));
    }
  }
  return result;
}

int OpApplier::apply(const broker::PersistOp& op, BatchResult& result) {
  return std::visit([&](const auto& concrete) { return on(concrete, result); }, op);
}

int OpApplier::insert_message(const broker::Message& m, BatchResult& result) {
  Statement& s = insert_message_;
  s.bind(1, static_cast<int64_t>(m.store_id));
  s.bind_text(2, m.topic);
  s.bind_blob(3, m.payload);
  s.bind(4, m.qos);
  s.bind(5, m.retain ? 1 : 0);
  s.bind_blob(6, m.forward_props);
  s.bind(7, m.expires_at_ms);
  s.bind(8, m.received_at_ms);
  int rc = finish(s);
  if (rc == SQLITE_OK) result.message_delta += sqlite3_changes(db_);
  return rc;
}

int OpApplier::collect_message_garbage(int64_t message_id, BatchResult& result) {
  gc_message_.bind(1, message_id);
  int rc = finish(gc_message_);
  if (rc == SQLITE_OK) result.message_delta -= sqlite3_changes(db_);
  return rc;
}

int OpApplier::on(const broker::OpSessionUpsert& op, BatchResult&) {
  Statement& s = upsert_session_;
  s.bind_text(1, op.client_id);
  s.bind(2, op.version);
  s.bind(3, static_cast<int64_t>(op.expiry_s));
  s.bind(4, op.last_seen_ms);
  if (op.will) {
    const broker::StoredWill& w = *op.will;
    s.bind_text(5, w.topic);
    s.bind_blob(6, w.payload);
    s.bind(7, w.qos);
    s.bind(8, w.retain ? 1 : 0);
    s.bind_blob(9, w.props);
    s.bind(10, static_cast<int64_t>(w.delay_s));
    s.bind(11, static_cast<int64_t>(w.expiry_s));
  } else {
    for (int i = 5; i <= 11; ++i) s.bind_null(i);
  }
  return finish(s);
}

int OpApplier::on(const broker::OpSessionDelete& op, BatchResult& result) {
  scratch_ids_.clear();
  Statement& q = delete_session_queue_;
  q.bind_text(1, op.client_id);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) scratch_ids_.push_back(q.column_int(0));
  q.reset();
  if (rc != SQLITE_DONE) return rc;
  std::sort(scratch_ids_.begin(), scratch_ids_.end());
  scratch_ids_.erase(std::unique(scratch_ids_.begin(), scratch_ids_.end()), scratch_ids_.end());
  for (int64_t id : scratch_ids_) {
    if ((rc = collect_message_garbage(id, result)) != SQLITE_OK) return rc;
  }
  for (Statement* s : {&delete_session_subs_, &delete_session_qos2_, &delete_session_}) {
    s->bind_text(1, op.client_id);
    if ((rc = finish(*s)) != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpSubscriptionAdd& op, BatchResult&) {
  Statement& s = upsert_sub_;
  s.bind_text(1, op.client_id);
  s.bind_text(2, op.filter);
  s.bind(3, op.qos);
  s.bind(4, op.no_local ? 1 : 0);
  s.bind(5, op.retain_as_published ? 1 : 0);
  s.bind(6, op.retain_handling);
  s.bind(7, static_cast<int64_t>(op.subscription_id));
  return finish(s);
}

int OpApplier::on(const broker::OpSubscriptionRemove& op, BatchResult&) {
  delete_sub_.bind_text(1, op.client_id);
  delete_sub_.bind_text(2, op.filter);
  return finish(delete_sub_);
}

int OpApplier::on(const broker::OpMessageAdd& op, BatchResult& result) {
  if (!op.message) return SQLITE_MISUSE;
  return insert_message(*op.message, result);
}

int OpApplier::on(const broker::OpQueueAdd& op, BatchResult&) {
  Statement& s = insert_queue_;
  s.bind_text(1, op.client_id);
  s.bind(2, static_cast<int64_t>(op.seq));
  s.bind(3, static_cast<int64_t>(op.message));
  s.bind(4, op.qos);
  s.bind(5, op.retain ? 1 : 0);
  s.bind_blob(6, encode_sub_ids(op.subscription_ids));
  return finish(s);
}

int OpApplier::on(const broker::OpQueueUpdate& op, BatchResult&) {
  Statement& s = update_queue_;
  s.bind_text(1, op.client_id);
  s.bind(2, static_cast<int64_t>(op.seq));
  s.bind(3, static_cast<int64_t>(op.state));
  s.bind(4, op.packet_id);
  return finish(s);
}

int OpApplier::on(const broker::OpQueueRemove& op, BatchResult& result) {
  Statement& s = delete_queue_;
  s.bind_text(1, op.client_id);
  s.bind(2, static_cast<int64_t>(op.seq));
  int rc = s.step();
  int64_t message_id = 0;
  bool found = rc == SQLITE_ROW;
  if (found) {
    message_id = s.column_int(0);
    rc = s.step();
  }
  s.reset();
  if (rc != SQLITE_DONE) return rc;
  return found ? collect_message_garbage(message_id, result) : SQLITE_OK;
}

int OpApplier::on(const broker::OpQos2InAdd& op, BatchResult&) {
  insert_qos2_.bind_text(1, op.client_id);
  insert_qos2_.bind(2, op.packet_id);
  return finish(insert_qos2_);
}

int OpApplier::on(const broker::OpQos2InRemove& op, BatchResult&) {
  delete_qos2_.bind_text(1, op.client_id);
  delete_qos2_.bind(2, op.packet_id);
  return finish(delete_qos2_);
}

int OpApplier::on(const broker::OpRetainedSet& op, BatchResult& result) {
  if (!op.message) return SQLITE_MISUSE;
  const broker::Message& m = *op.message;
  int rc = insert_message(m, result);
  if (rc != SQLITE_OK) return rc;
  select_retained_.bind_text(1, m.topic);
  rc = select_retained_.step();
  int64_t old_id = rc == SQLITE_ROW ? select_retained_.column_int(0) : 0;
  select_retained_.reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
  upsert_retained_.bind_text(1, m.topic);
  upsert_retained_.bind(2, static_cast<int64_t>(m.store_id));
  if ((rc = finish(upsert_retained_)) != SQLITE_OK) return rc;
  if (old_id != 0 && old_id != static_cast<int64_t>(m.store_id)) {
    return collect_message_garbage(old_id, result);
  }
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpRetainedClear& op, BatchResult& result) {
  Statement& s = delete_retained_;
  s.bind_text(1, op.topic);
  int rc = s.step();
  int64_t old_id = 0;
  bool found = rc == SQLITE_ROW;
  if (found) {
    old_id = s.column_int(0);
    rc = s.step();
  }
  s.reset();
  if (rc != SQLITE_DONE) return rc;
  return found ? collect_message_garbage(old_id, result) : SQLITE_OK;
}

}  // namespace harbor::store
