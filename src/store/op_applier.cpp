#include "store/op_applier.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace harbor::store {
namespace {

int finish(Statement& stmt) {
  int rc = stmt.run();
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

// "<head> <row>, <row>, ..." with `n` rows.
std::string repeated(std::string_view head, std::string_view row, size_t n) {
  std::string sql(head);
  for (size_t i = 0; i < n; ++i) {
    sql += i == 0 ? " " : ", ";
    sql += row;
  }
  return sql;
}

// Writes `count` items: kChunk at a time with `many`, the rest one by one with `one`.
// bind(stmt, first_parameter, item, slot) binds item `item` at parameter first_parameter + 1
// and onward (slot = its position in the statement); after(stmt) runs after each statement.
template <class Bind, class After>
int write_chunked(size_t count, size_t chunk, int columns, Statement& many, Statement& one,
                  Bind&& bind, After&& after) {
  size_t i = 0;
  for (; i + chunk <= count; i += chunk) {
    for (size_t k = 0; k < chunk; ++k) bind(many, static_cast<int>(k) * columns, i + k, k);
    if (int rc = finish(many); rc != SQLITE_OK) return rc;
    after(many);
  }
  for (; i < count; ++i) {
    bind(one, 0, i, 0);
    if (int rc = finish(one); rc != SQLITE_OK) return rc;
    after(one);
  }
  return SQLITE_OK;
}

constexpr int kMessageColumns = 9;
constexpr int kQueueColumns = 9;
constexpr std::string_view kInsertMessage =
    "INSERT OR IGNORE INTO messages(id, topic, payload, qos, retain, props, expires_at_ms, "
    "received_at_ms, refs) VALUES";
constexpr std::string_view kMessageRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
// Ids above every id ever inserted are new: a plain INSERT, no conflict check, no RETURNING.
constexpr std::string_view kInsertFreshMessage =
    "INSERT INTO messages(id, topic, payload, qos, retain, props, expires_at_ms, "
    "received_at_ms, refs) VALUES";
// Only the rows actually inserted are returned; an id already stored is ignored and gets
// its references added with a separate UPDATE.
constexpr std::string_view kReturningId = " RETURNING id";
constexpr std::string_view kInsertQueue =
    "INSERT OR REPLACE INTO queue(client_id, seq, message_id, qos, retain, sub_ids, state, "
    "packet_id, shared_filter) VALUES";
constexpr std::string_view kQueueRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";

}  // namespace

std::string encode_sub_ids(const std::vector<uint32_t>& ids) {
  std::string out;
  out.reserve(ids.size() * 4);
  for (uint32_t id : ids) {
    for (int shift = 0; shift < 32; shift += 8)
      out.push_back(static_cast<char>((id >> shift) & 0xFF));
  }
  return out;
}

std::vector<uint32_t> decode_sub_ids(std::string_view blob) {
  std::vector<uint32_t> ids;
  ids.reserve(blob.size() / 4);
  for (size_t i = 0; i + 4 <= blob.size(); i += 4) {
    uint32_t id = 0;
    for (int b = 0; b < 4; ++b)
      id |= static_cast<uint32_t>(static_cast<uint8_t>(blob[i + b])) << (8 * b);
    ids.push_back(id);
  }
  return ids;
}

tl::expected<OpApplier, std::string> OpApplier::create(Db& db, int64_t max_message_id,
                                                       ErrorLog on_op_error) {
  OpApplier a(db, std::move(on_op_error));
  a.max_inserted_id_ = max_message_id;
  struct Entry {
    Statement* stmt;
    std::string sql;
  };
  const Entry entries[] = {
      {&a.insert_message_, repeated(kInsertMessage, kMessageRow, 1) + std::string(kReturningId)},
      {&a.insert_fresh_message_, repeated(kInsertFreshMessage, kMessageRow, 1)},
      {&a.insert_fresh_messages_, repeated(kInsertFreshMessage, kMessageRow, kChunk)},
      {&a.insert_messages_,
       repeated(kInsertMessage, kMessageRow, kChunk) + std::string(kReturningId)},
      {&a.add_refs_, "UPDATE messages SET refs = refs + ?2 WHERE id = ?1"},
      {&a.delete_message_, "DELETE FROM messages WHERE id = ?1 AND refs <= ?2"},
      {&a.release_message_, "UPDATE messages SET refs = refs - ?2 WHERE id = ?1"},
      {&a.delete_messages_,
       repeated("DELETE FROM messages WHERE refs <= 1 AND id IN (", "?", kChunk) + ")"},
      {&a.release_messages_,
       repeated("UPDATE messages SET refs = refs - 1 WHERE id IN (", "?", kChunk) + ")"},
      {&a.delete_message_range_, "DELETE FROM messages WHERE id BETWEEN ?1 AND ?2 AND refs <= 1"},
      {&a.release_message_range_, "UPDATE messages SET refs = refs - 1 WHERE id BETWEEN ?1 AND ?2"},
      {&a.count_messages_, "UPDATE counters SET value = value + ?1 WHERE name = 'messages'"},
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
      {&a.insert_queue_, repeated(kInsertQueue, kQueueRow, 1)},
      {&a.insert_queues_, repeated(kInsertQueue, kQueueRow, kChunk)},
      {&a.update_queue_,
       "UPDATE queue SET state = ?3, packet_id = ?4 WHERE client_id = ?1 AND seq = ?2"},
      {&a.update_shared_, "UPDATE queue SET shared_filter = ?1 WHERE client_id = ?2 AND seq = ?3"},
      {&a.delete_queue_range_,
       "DELETE FROM queue WHERE client_id = ?1 AND seq BETWEEN ?2 AND ?3 RETURNING message_id"},
      {&a.delete_queue_run_, "DELETE FROM queue WHERE client_id = ?1 AND seq BETWEEN ?2 AND ?3"},
      {&a.savepoint_, "SAVEPOINT removals"},
      {&a.savepoint_release_, "RELEASE removals"},
      {&a.savepoint_rollback_, "ROLLBACK TO removals"},
      {&a.insert_qos2_, "INSERT OR IGNORE INTO qos2_in(client_id, packet_id) VALUES (?1, ?2)"},
      {&a.delete_qos2_, "DELETE FROM qos2_in WHERE client_id = ?1 AND packet_id = ?2"},
      {&a.select_retained_, "SELECT message_id FROM retained WHERE topic = ?1"},
      {&a.upsert_retained_, "INSERT OR REPLACE INTO retained(topic, message_id) VALUES (?1, ?2)"},
      {&a.delete_retained_, "DELETE FROM retained WHERE topic = ?1 RETURNING message_id"},
  };
  for (const Entry& e : entries) {
    auto stmt = db.prepare(e.sql);
    if (!stmt) return tl::unexpected("cannot prepare \"" + e.sql + "\": " + db.error_message());
    *e.stmt = std::move(*stmt);
  }
  a.scratch_blobs_.resize(kChunk);
  return a;
}

// ---------------------------------------------------------------- references

RefTable::Ref& OpApplier::touch(int64_t message_id) {
  if (RefTable::Ref* r = refs_.find(message_id)) return *r;
  refs_.set(message_id, RefTable::Ref{});
  touched_.push_back(message_id);
  return *refs_.find(message_id);
}

void OpApplier::reference(const broker::Message& m) {
  RefTable::Ref& r = touch(static_cast<int64_t>(m.store_id));
  ++r.delta;
  r.message = &m;
}

void OpApplier::release(int64_t message_id) { --touch(message_id).delta; }

int OpApplier::release_returned(Statement& s) {
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) release(s.column_int(0));
  s.reset();
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void OpApplier::finish_batch(bool committed) {
  clear_pending();
  ++batch_no_;
  if (committed) {
    if (wrote_all_deferred_) {
      deferred_.clear();
      deferred_order_.clear();
    }
    // Written by this batch: gone, unless deferred again since (a later batch number).
    for (size_t i = 0; i < due_written_; ++i) {
      const DeferredAge& age = deferred_order_.front();
      if (auto it = deferred_.find(age.key);
          it != deferred_.end() && it->second.batch == age.batch) {
        deferred_.erase(it);
      }
      deferred_order_.pop_front();
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& [key, d] : new_deferred_) {
      d.batch = batch_no_;
      deferred_order_.push_back(DeferredAge{key, batch_no_, now});
    }
    // Disjoint: a key goes to new_deferred_ only after leaving deferred_.
    deferred_.merge(new_deferred_);
    if (deferred_clients_.size() > kMinClientsToCompact &&
        deferred_clients_.size() > 2 * deferred_.size()) {
      compact_deferred_clients();
    }
  }
  // Not committed: the retry applies the same ops again, and defers and writes again.
  new_deferred_.clear();
  due_written_ = 0;
  wrote_all_deferred_ = false;
}

void OpApplier::release_memory() {
  if (!deferred_.empty() || !new_deferred_.empty()) return;
  DeferredMap().swap(deferred_);
  std::deque<DeferredAge>().swap(deferred_order_);
  std::unordered_map<std::string_view, uint32_t>().swap(deferred_client_index_);
  std::deque<std::string>().swap(deferred_clients_);
  last_client_ = {};
  last_client_slot_ = kNoClient;
}

void OpApplier::compact_deferred_clients() {
  // Ids of clients with nothing deferred any more go; the others are numbered anew.
  std::vector<uint32_t> remap(deferred_clients_.size(), kNoClient);
  std::deque<std::string> clients;
  std::unordered_map<std::string_view, uint32_t> index;
  DeferredMap kept;
  kept.reserve(deferred_.size());
  for (const auto& [key, d] : deferred_) {
    uint32_t& slot = remap[key.client];
    if (slot == kNoClient) {
      slot = static_cast<uint32_t>(clients.size());
      index.emplace(clients.emplace_back(std::move(deferred_clients_[key.client])), slot);
    }
    kept.emplace(DeferredKey{slot, key.seq}, d);
  }
  for (DeferredAge& age : deferred_order_) {
    if (age.key.client != kNoClient) age.key.client = remap[age.key.client];  // kNoClient: stale
  }
  deferred_.swap(kept);
  deferred_clients_.swap(clients);
  deferred_client_index_.swap(index);
  last_client_ = {};
  last_client_slot_ = kNoClient;
}

uint32_t OpApplier::deferred_client(std::string_view client_id, bool add) {
  if (last_client_slot_ != kNoClient && client_id == last_client_) return last_client_slot_;
  uint32_t slot = kNoClient;
  if (auto it = deferred_client_index_.find(client_id); it != deferred_client_index_.end()) {
    slot = it->second;
  } else if (add) {
    slot = static_cast<uint32_t>(deferred_clients_.size());
    const std::string& stored = deferred_clients_.emplace_back(client_id);
    deferred_client_index_.emplace(stored, slot);
  } else {
    return kNoClient;
  }
  last_client_ = deferred_clients_[slot];
  last_client_slot_ = slot;
  return slot;
}

bool OpApplier::forget_deferred(const QueueKey& key) {
  if (deferred_.empty() && new_deferred_.empty()) return false;
  const uint32_t client = deferred_client(key.client_id, false);
  if (client == kNoClient) return false;
  const DeferredKey k{client, key.seq};
  return (deferred_.erase(k) + new_deferred_.erase(k)) != 0;
}

int OpApplier::write_update(const DeferredKey& key, const Deferred& d) {
  Statement& s = update_queue_;
  s.bind_text_ref(1, deferred_clients_[key.client]);
  s.bind(2, static_cast<int64_t>(key.seq));
  s.bind(3, d.state);
  s.bind(4, d.packet_id);
  return finish(s);
}

int OpApplier::write_due_deferred(BatchResult& result) {
  const auto cutoff = std::chrono::steady_clock::now() - deferred_max_age_;
  size_t i = 0;
  for (; i < deferred_order_.size(); ++i) {
    const DeferredAge& age = deferred_order_[i];
    if (age.at > cutoff && deferred_order_.size() - i <= deferred_max_entries_) break;
    auto it = deferred_.find(age.key);
    if (it == deferred_.end() || it->second.batch != age.batch) continue;  // stale
    if (removal_held_ && removal_held_(deferred_clients_[it->first.client], it->first.seq)) {
      ++result.elided_ops;  // leaves deferred_ with the written ones
      continue;
    }
    if (int rc = write_update(it->first, it->second); rc != SQLITE_OK) return rc;
  }
  due_written_ = i;
  return SQLITE_OK;
}

int OpApplier::write_deferred() {
  for (const DeferredMap* m : {&deferred_, &new_deferred_}) {
    for (const auto& [key, d] : *m) {
      if (int rc = write_update(key, d); rc != SQLITE_OK) return rc;
    }
  }
  // Written: committed, they are forgotten by finish_batch(true).
  deferred_.merge(new_deferred_);
  new_deferred_.clear();
  wrote_all_deferred_ = true;
  return SQLITE_OK;
}

void OpApplier::clear_pending() {
  removals_.clear();
  queue_rows_.clear();
  queue_row_index_.clear();
  row_updates_.clear();
  refs_.reset();
  touched_.clear();
}

// ---------------------------------------------------------------- batch

OpApplier::BatchResult OpApplier::apply_batch(const std::vector<PendingOp>& ops, size_t begin,
                                              size_t end) {
  BatchResult result;
  clear_pending();
  queue_row_index_.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    const broker::PersistOp& op = ops[i].op;
    int rc = apply(op, result);
    if (rc == SQLITE_OK) continue;
    if (is_storage_error(rc)) {
      result.rc = rc;
      result.error = std::string(sqlite3_errmsg(db_));
      return result;
    }
    ++result.failed_ops;
    if (on_op_error_) {
      on_op_error_("op seq " + std::to_string(ops[i].seq) + " (kind " + std::to_string(op.index()) +
                   ") skipped: " + std::string(sqlite3_errmsg(db_)));
    }
  }
  int rc = flush_queue_rows();
  if (rc == SQLITE_OK && !deferred_order_.empty()) {
    rc = write_due_deferred(result);  // deferred long enough ago: not acknowledged since
  }
  if (rc == SQLITE_OK) rc = flush_messages(result);
  if (rc == SQLITE_OK && result.message_delta != 0) {
    count_messages_.bind(1, result.message_delta);
    rc = finish(count_messages_);
  }
  if (rc != SQLITE_OK) {
    // Multi-row statements fail as a whole; every error here is treated as storage.
    result.rc = rc;
    result.error = std::string(sqlite3_errmsg(db_));
  }
  return result;
}

int OpApplier::apply(const broker::PersistOp& op, BatchResult& result) {
  return std::visit([&](const auto& concrete) { return on(concrete, result); }, op);
}

template <typename Step>
int OpApplier::for_each_run(Statement& s, Step step) {
  for (size_t i = 0; i < removals_.size();) {
    size_t j = i + 1;
    while (j < removals_.size() && removals_[j].key.client_id == removals_[i].key.client_id &&
           removals_[j].key.seq == removals_[j - 1].key.seq + 1) {
      ++j;
    }
    s.bind_text_ref(1, removals_[i].key.client_id);
    s.bind(2, static_cast<int64_t>(removals_[i].key.seq));
    s.bind(3, static_cast<int64_t>(removals_[j - 1].key.seq));
    if (int rc = step(s, j - i); rc != SQLITE_OK) return rc;
    i = j;
  }
  return SQLITE_OK;
}

int OpApplier::flush_removals() {
  if (removals_.empty()) return SQLITE_OK;
  // Acknowledgements mostly come in order: consecutive seqs of one client go in one range
  // delete. Every seq inside a run is being removed, so the range deletes nothing else.
  std::sort(removals_.begin(), removals_.end(), [](const Removal& a, const Removal& b) {
    return a.key.client_id != b.key.client_id ? a.key.client_id < b.key.client_id
                                              : a.key.seq < b.key.seq;
  });
  // With every message id known, a run is deleted without RETURNING (reading each deleted
  // row back costs four times the delete). A run that deletes fewer rows than it names
  // (one was gone already) undoes them all, and they take the reading path below.
  const bool known = std::all_of(removals_.begin(), removals_.end(),
                                 [](const Removal& r) { return r.message_id != 0; });
  if (known) {
    bool all_found = false;
    if (int rc = delete_known_runs(all_found); rc != SQLITE_OK) return rc;
    if (all_found) {
      for (const Removal& r : removals_) release(r.message_id);
      removals_.clear();
      return SQLITE_OK;
    }
  }
  int rc =
      for_each_run(delete_queue_range_, [&](Statement& s, size_t) { return release_returned(s); });
  if (rc != SQLITE_OK) return rc;
  removals_.clear();
  return SQLITE_OK;
}

int OpApplier::delete_known_runs(bool& all_found) {
  all_found = false;
  if (int rc = finish(savepoint_); rc != SQLITE_OK) return rc;
  bool found = true;
  int rc = for_each_run(delete_queue_run_, [&](Statement& s, size_t named) {
    if (!found) return SQLITE_OK;  // the savepoint is undone anyway
    if (int step_rc = finish(s); step_rc != SQLITE_OK) return step_rc;
    found = static_cast<size_t>(sqlite3_changes(db_)) == named;
    return SQLITE_OK;
  });
  if (rc == SQLITE_OK && !found) rc = finish(savepoint_rollback_);
  if (rc == SQLITE_OK) rc = finish(savepoint_release_);
  if (rc != SQLITE_OK) return rc;
  all_found = found;
  return SQLITE_OK;
}

int OpApplier::flush_queue_rows() {
  // Rows removed by this batch go first: a row added after its removal (same key) stays.
  if (int rc = flush_removals(); rc != SQLITE_OK) return rc;
  std::vector<const QueueRow*> live;
  live.reserve(queue_rows_.size());
  for (const QueueRow& r : queue_rows_) {
    if (r.live) live.push_back(&r);
  }
  auto bind_row = [&](Statement& s, int base, size_t index, size_t slot) {
    const QueueRow& r = *live[index];
    s.bind_text_ref(base + 1, r.client_id);
    s.bind(base + 2, static_cast<int64_t>(r.seq));
    s.bind(base + 3, r.message);
    s.bind(base + 4, r.qos);
    s.bind(base + 5, r.retain ? 1 : 0);
    if (r.subscription_ids == nullptr || r.subscription_ids->empty()) {
      s.bind_blob_ref(base + 6, {});
    } else {
      scratch_blobs_[slot] = encode_sub_ids(*r.subscription_ids);
      s.bind_blob_ref(base + 6, scratch_blobs_[slot]);
    }
    s.bind(base + 7, r.state);
    s.bind(base + 8, r.packet_id);
    if (r.shared_filter.empty())
      s.bind_null(base + 9);
    else
      s.bind_text_ref(base + 9, r.shared_filter);
  };
  int rc = write_chunked(live.size(), kChunk, kQueueColumns, insert_queues_, insert_queue_,
                         bind_row, [](Statement&) {});
  if (rc != SQLITE_OK) return rc;
  queue_rows_.clear();
  queue_row_index_.clear();
  for (const auto& [key, update] : row_updates_) {
    Statement& s = update_queue_;
    s.bind_text_ref(1, key.client_id);
    s.bind(2, static_cast<int64_t>(key.seq));
    s.bind(3, update.first);
    s.bind(4, update.second);
    if ((rc = finish(s)) != SQLITE_OK) return rc;
  }
  row_updates_.clear();
  return SQLITE_OK;
}

int OpApplier::flush_messages(BatchResult& result) {
  int rc = insert_messages(result);
  if (rc == SQLITE_OK) rc = release_messages(result);
  return rc;
}

int OpApplier::insert_messages(BatchResult& result) {
  // Messages this batch references more than it releases: new ones are inserted with their
  // count, stored ones get it added. A message added and released within the batch is
  // never written.
  std::vector<const broker::Message*> insert;
  for (int64_t id : touched_) {
    const RefTable::Ref* r = refs_.find(id);
    if (r->delta > 0 && r->message != nullptr) insert.push_back(r->message);
  }
  auto bind_row = [&](Statement& s, int base, size_t index) {
    const broker::Message& m = *insert[index];
    s.bind(base + 1, static_cast<int64_t>(m.store_id));
    s.bind_text_ref(base + 2, m.topic);
    s.bind_blob_ref(base + 3, m.payload);
    s.bind(base + 4, m.qos);
    s.bind(base + 5, m.retain ? 1 : 0);
    s.bind_blob_ref(base + 6, m.forward_props);
    s.bind(base + 7, m.expires_at_ms);
    s.bind(base + 8, m.received_at_ms);
    s.bind(base + 9, refs_.find(static_cast<int64_t>(m.store_id))->delta);
  };
  // Runs one statement over insert[first, first + n); ids it did not insert were stored
  // already (by an earlier batch, for another receiver): their count goes up instead.
  auto run = [&](Statement& s, size_t first, size_t n) {
    for (size_t k = 0; k < n; ++k) bind_row(s, static_cast<int>(k) * kMessageColumns, first + k);
    scratch_returned_.clear();
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) scratch_returned_.push_back(s.column_int(0));
    s.reset();
    if (rc != SQLITE_DONE) return rc;
    result.message_delta += static_cast<int64_t>(scratch_returned_.size());
    if (scratch_returned_.size() == n) return SQLITE_OK;
    std::sort(scratch_returned_.begin(), scratch_returned_.end());
    for (size_t k = first; k < first + n; ++k) {
      auto id = static_cast<int64_t>(insert[k]->store_id);
      if (std::binary_search(scratch_returned_.begin(), scratch_returned_.end(), id)) continue;
      add_refs_.bind(1, id);
      add_refs_.bind(2, refs_.find(id)->delta);
      if ((rc = finish(add_refs_)) != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
  };
  // Ids are handed out in increasing order, so most of a batch is above every id inserted
  // before: those go first, in plain INSERTs (a conflict there would mean the order was
  // not kept: the fast path is given up and the rows take the checked one).
  auto fresh_end = std::partition(insert.begin(), insert.end(), [this](const broker::Message* m) {
    return static_cast<int64_t>(m->store_id) > max_inserted_id_;
  });
  const size_t fresh = static_cast<size_t>(fresh_end - insert.begin());
  int64_t highest = max_inserted_id_;
  auto run_fresh = [&](Statement& s, size_t first, size_t n) {
    for (size_t k = 0; k < n; ++k) {
      bind_row(s, static_cast<int>(k) * kMessageColumns, first + k);
      highest = std::max(highest, static_cast<int64_t>(insert[first + k]->store_id));
    }
    int rc = s.step();
    s.reset();
    if (rc == SQLITE_DONE) {
      result.message_delta += static_cast<int64_t>(n);
      return SQLITE_OK;
    }
    if ((rc & 0xFF) != SQLITE_CONSTRAINT) return rc;
    max_inserted_id_ = std::numeric_limits<int64_t>::max();  // checked inserts from now on
    return run(n == kChunk ? insert_messages_ : insert_message_, first, n);
  };
  size_t i = 0;
  for (; i + kChunk <= fresh; i += kChunk) {
    if (int rc = run_fresh(insert_fresh_messages_, i, kChunk); rc != SQLITE_OK) return rc;
  }
  for (; i < fresh; ++i) {
    if (int rc = run_fresh(insert_fresh_message_, i, 1); rc != SQLITE_OK) return rc;
  }
  if (max_inserted_id_ != std::numeric_limits<int64_t>::max()) max_inserted_id_ = highest;
  for (; i + kChunk <= insert.size(); i += kChunk) {
    if (int rc = run(insert_messages_, i, kChunk); rc != SQLITE_OK) return rc;
  }
  for (; i < insert.size(); ++i) {
    if (int rc = run(insert_message_, i, 1); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int OpApplier::release_messages(BatchResult& result) {
  // Messages this batch releases more than it references: a row whose count drops to 0 is
  // deleted, the others counted down. Ids are handed out in order and a receiver
  // acknowledges in order, so a drain releases runs of consecutive ids, one reference each:
  // a run of kMinRange or more is one range DELETE (every id inside it is released), and
  // the UPDATE for rows still referenced elsewhere runs only when the DELETE missed some.
  std::vector<int64_t> gone;
  for (int64_t id : touched_) {
    if (refs_.find(id)->delta < 0) gone.push_back(id);
  }
  std::sort(gone.begin(), gone.end());
  auto deleted = [&] {
    int64_t n = sqlite3_changes(db_);
    result.message_delta -= n;
    return static_cast<size_t>(n);
  };
  scratch_ids_.clear();          // one reference each, not in a run
  std::vector<int64_t> several;  // more than one reference each
  for (size_t i = 0; i < gone.size();) {
    if (refs_.find(gone[i])->delta != -1) {
      several.push_back(gone[i++]);
      continue;
    }
    size_t j = i + 1;
    while (j < gone.size() && gone[j] == gone[j - 1] + 1 && refs_.find(gone[j])->delta == -1) ++j;
    if (j - i >= kMinRange) {
      delete_message_range_.bind(1, gone[i]);
      delete_message_range_.bind(2, gone[j - 1]);
      if (int rc = finish(delete_message_range_); rc != SQLITE_OK) return rc;
      if (deleted() < j - i) {
        release_message_range_.bind(1, gone[i]);
        release_message_range_.bind(2, gone[j - 1]);
        if (int rc = finish(release_message_range_); rc != SQLITE_OK) return rc;
      }
    } else {
      scratch_ids_.insert(scratch_ids_.end(), gone.begin() + static_cast<ptrdiff_t>(i),
                          gone.begin() + static_cast<ptrdiff_t>(j));
    }
    i = j;
  }
  size_t i = 0;
  for (; i + kChunk <= scratch_ids_.size(); i += kChunk) {
    for (size_t k = 0; k < kChunk; ++k)
      delete_messages_.bind(static_cast<int>(k) + 1, scratch_ids_[i + k]);
    if (int rc = finish(delete_messages_); rc != SQLITE_OK) return rc;
    if (deleted() == kChunk) continue;
    for (size_t k = 0; k < kChunk; ++k)
      release_messages_.bind(static_cast<int>(k) + 1, scratch_ids_[i + k]);
    if (int rc = finish(release_messages_); rc != SQLITE_OK) return rc;
  }
  several.insert(several.end(), scratch_ids_.begin() + static_cast<ptrdiff_t>(i),
                 scratch_ids_.end());
  for (int64_t id : several) {
    const int64_t count = -static_cast<int64_t>(refs_.find(id)->delta);
    delete_message_.bind(1, id);
    delete_message_.bind(2, count);
    if (int rc = finish(delete_message_); rc != SQLITE_OK) return rc;
    if (deleted() == 1) continue;
    release_message_.bind(1, id);
    release_message_.bind(2, count);
    if (int rc = finish(release_message_); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

// ---------------------------------------------------------------- ops

int OpApplier::on(const broker::OpSessionUpsert& op, BatchResult&) {
  Statement& s = upsert_session_;
  s.bind_text_ref(1, op.client_id);
  s.bind(2, op.version);
  s.bind(3, static_cast<int64_t>(op.expiry_s));
  s.bind(4, op.last_seen_ms);
  if (op.will) {
    const broker::StoredWill& w = *op.will;
    s.bind_text_ref(5, w.topic);
    s.bind_blob_ref(6, w.payload);
    s.bind(7, w.qos);
    s.bind(8, w.retain ? 1 : 0);
    s.bind_blob_ref(9, w.props);
    s.bind(10, static_cast<int64_t>(w.delay_s));
    s.bind(11, static_cast<int64_t>(w.expiry_s));
  } else {
    for (int i = 5; i <= 11; ++i) s.bind_null(i);
  }
  return finish(s);
}

int OpApplier::on(const broker::OpSessionDelete& op, BatchResult&) {
  // Queue rows of this batch go in first, so the delete below sees them.
  int rc = flush_queue_rows();
  if (rc != SQLITE_OK) return rc;
  if (const uint32_t client = deferred_client(op.client_id, false); client != kNoClient) {
    for (DeferredMap* m : {&deferred_, &new_deferred_}) {
      std::erase_if(*m, [&](const auto& kv) { return kv.first.client == client; });
    }
  }
  delete_session_queue_.bind_text_ref(1, op.client_id);
  if ((rc = release_returned(delete_session_queue_)) != SQLITE_OK) return rc;
  for (Statement* s : {&delete_session_subs_, &delete_session_qos2_, &delete_session_}) {
    s->bind_text_ref(1, op.client_id);
    if ((rc = finish(*s)) != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpSubscriptionAdd& op, BatchResult&) {
  Statement& s = upsert_sub_;
  s.bind_text_ref(1, op.client_id);
  s.bind_text_ref(2, op.filter);
  s.bind(3, op.qos);
  s.bind(4, op.no_local ? 1 : 0);
  s.bind(5, op.retain_as_published ? 1 : 0);
  s.bind(6, op.retain_handling);
  s.bind(7, static_cast<int64_t>(op.subscription_id));
  return finish(s);
}

int OpApplier::on(const broker::OpSubscriptionRemove& op, BatchResult&) {
  delete_sub_.bind_text_ref(1, op.client_id);
  delete_sub_.bind_text_ref(2, op.filter);
  return finish(delete_sub_);
}

int OpApplier::on(const broker::OpQueueAdd& op, BatchResult&) {
  if (!op.message) return SQLITE_MISUSE;
  QueueKey key{op.client_id, op.seq};
  auto [it, fresh] = queue_row_index_.try_emplace(key, queue_rows_.size());
  if (!fresh) {
    // The same entry twice in one batch: the later one replaces it, as INSERT OR REPLACE.
    QueueRow& old = queue_rows_[it->second];
    if (old.live) release(old.message);
    old.live = false;
    it->second = queue_rows_.size();
  }
  row_updates_.erase(key);  // the add replaces a stored row with the same key
  forget_deferred(key);
  reference(*op.message);
  queue_rows_.push_back(QueueRow{op.client_id, op.seq, static_cast<int64_t>(op.message->store_id),
                                 op.qos, op.retain, &op.subscription_ids, 0, 0, true, 1});
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpQueueShared& op, BatchResult&) {
  auto it = queue_row_index_.find(QueueKey{op.client_id, op.seq});
  if (it != queue_row_index_.end()) {
    QueueRow& row = queue_rows_[it->second];
    if (row.live) {
      row.shared_filter = op.filter;  // the op outlives the batch's flush, as client_id
      ++row.ops;
    }
    return SQLITE_OK;
  }
  // The row was written by an earlier batch (or is gone: then nothing is updated).
  update_shared_.bind_text_ref(1, op.filter);
  update_shared_.bind_text_ref(2, op.client_id);
  update_shared_.bind(3, static_cast<int64_t>(op.seq));
  return finish(update_shared_);
}

int OpApplier::on(const broker::OpQueueUpdate& op, BatchResult&) {
  auto it = queue_row_index_.find(QueueKey{op.client_id, op.seq});
  if (it != queue_row_index_.end()) {
    QueueRow& row = queue_rows_[it->second];
    row.state = static_cast<int>(op.state);
    row.packet_id = op.packet_id;
    ++row.ops;
    return SQLITE_OK;
  }
  const QueueKey key{op.client_id, op.seq};
  forget_deferred(key);  // a later state replaces a deferred one
  if (op.state == broker::OutState::AwaitPuback) {
    row_updates_.erase(key);
    new_deferred_.insert_or_assign(DeferredKey{deferred_client(op.client_id, true), op.seq},
                                   Deferred{static_cast<int>(op.state), op.packet_id, 0});
    return SQLITE_OK;
  }
  row_updates_[key] = {static_cast<int>(op.state), op.packet_id};
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpQueueRemove& op, BatchResult& result) {
  // An entry added and removed inside one batch (acknowledged before its commit) never
  // gets a row, and its message one reference fewer: none at all when every receiver
  // acknowledged in time.
  auto pending = queue_row_index_.find(QueueKey{op.client_id, op.seq});
  if (pending != queue_row_index_.end()) {
    QueueRow& row = queue_rows_[pending->second];
    result.elided_ops += row.ops + 1;
    row.live = false;
    release(row.message);
    queue_row_index_.erase(pending);
    return SQLITE_OK;
  }
  if (row_updates_.erase(QueueKey{op.client_id, op.seq}) != 0) ++result.elided_ops;
  if (forget_deferred(QueueKey{op.client_id, op.seq})) ++result.elided_ops;
  removals_.push_back(Removal{QueueKey{op.client_id, op.seq}, op.message_id});  // at the end
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpQos2InAdd& op, BatchResult&) {
  insert_qos2_.bind_text_ref(1, op.client_id);
  insert_qos2_.bind(2, op.packet_id);
  return finish(insert_qos2_);
}

int OpApplier::on(const broker::OpQos2InRemove& op, BatchResult&) {
  delete_qos2_.bind_text_ref(1, op.client_id);
  delete_qos2_.bind(2, op.packet_id);
  return finish(delete_qos2_);
}

int OpApplier::on(const broker::OpRetainedSet& op, BatchResult&) {
  if (!op.message) return SQLITE_MISUSE;
  const broker::Message& m = *op.message;
  select_retained_.bind_text_ref(1, m.topic);
  int rc = select_retained_.step();
  int64_t old_id = rc == SQLITE_ROW ? select_retained_.column_int(0) : 0;
  select_retained_.reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
  upsert_retained_.bind_text_ref(1, m.topic);
  upsert_retained_.bind(2, static_cast<int64_t>(m.store_id));
  if ((rc = finish(upsert_retained_)) != SQLITE_OK) return rc;
  if (old_id == static_cast<int64_t>(m.store_id)) return SQLITE_OK;  // already this message
  reference(m);
  if (old_id != 0) release(old_id);
  return SQLITE_OK;
}

int OpApplier::on(const broker::OpRetainedClear& op, BatchResult&) {
  delete_retained_.bind_text_ref(1, op.topic);
  return release_returned(delete_retained_);
}

}  // namespace harbor::store
