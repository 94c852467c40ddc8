// Store::restore: the startup load, on the owner thread before the writer starts.
#include <algorithm>
#include <unordered_map>

#include "store/queue_reader.hpp"
#include "store/store.hpp"

namespace harbor::store {
namespace {

constexpr int64_t kNeverExpires = 0xFFFFFFFF;

// Whether a stored session is over at `now`. last_seen_ms == 0 means the client was
// connected when the broker stopped: its expiry counts from this restart.
bool session_expired(int64_t expiry_s, int64_t last_seen_ms, int64_t now) {
  if (expiry_s == 0) return true;  // ended at disconnect; should not have been stored
  if (expiry_s >= kNeverExpires || last_seen_ms == 0) return false;
  return last_seen_ms + expiry_s * 1000 < now;
}

}  // namespace

tl::expected<broker::RestoredState, std::string> Store::restore(int64_t now_unix_ms,
                                                              size_t queue_head) {
  auto fail = [&](const std::string& what) {
    std::string text = path_ + ": restore failed: " + what + ": " + db_.error_message();
    if (db_.in_transaction()) db_.exec("ROLLBACK");
    return tl::unexpected(text);
  };
  if (started_) return tl::unexpected(path_ + ": restore() called after start()");
  if (db_.exec("BEGIN IMMEDIATE") != SQLITE_OK) return fail("cannot begin");

  // 1. Sessions whose expiry passed go, with everything hanging off them.
  std::vector<std::string> expired_sessions;
  {
    auto q = db_.prepare("SELECT client_id, expiry_s, last_seen_ms FROM sessions");
    if (!q) return fail("reading sessions");
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      if (session_expired(q->column_int(1), q->column_int(2), now_unix_ms)) {
        expired_sessions.push_back(q->column_text(0));
      }
    }
    if (rc != SQLITE_DONE) return fail("reading sessions");
  }
  {
    auto del = db_.prepare("DELETE FROM sessions WHERE client_id = ?1");
    if (!del) return fail("preparing session delete");
    for (const auto& id : expired_sessions) {
      del->bind_text(1, id);
      if (del->run() != SQLITE_DONE) return fail("deleting an expired session");
    }
  }

  // 2. Rows without their session, queue entries whose message expired before onward
  //    delivery started (state Queued) [MQTT-3.3.2-5], retained messages that expired,
  //    queue and retained rows pointing at nothing. Each deleted queue or retained row
  //    gives back its message's reference; a message left with none goes.
  //    Nothing here scans the queue or the messages (restore time must not grow with the
  //    backlog): the queue's client ids are visited by index seeks, expired messages are
  //    found through messages_expiry, and the scan of the queue for expired entries runs
  //    only when such messages exist. Queue rows whose message is missing (never written
  //    by this broker) are skipped by every read and go with their session.
  std::vector<const char*> cleanup = {
      "DELETE FROM subscriptions WHERE client_id NOT IN (SELECT client_id FROM sessions)",
      "DELETE FROM qos2_in WHERE client_id NOT IN (SELECT client_id FROM sessions)",
      "DELETE FROM retained WHERE message_id IN "
      "(SELECT r.message_id FROM retained r JOIN messages m ON m.id = r.message_id "
      "WHERE m.expires_at_ms > 0 AND m.expires_at_ms <= ?1) RETURNING message_id",
      "DELETE FROM retained WHERE message_id NOT IN (SELECT id FROM messages) RETURNING message_id",
  };
  auto any_expired = db_.prepare("SELECT 1 FROM messages WHERE expires_at_ms > 0 AND expires_at_ms <= ?1 LIMIT 1");
  if (!any_expired) return fail("looking for expired messages");
  any_expired->bind(1, now_unix_ms);
  const int expired_rc = any_expired->step();
  if (expired_rc != SQLITE_ROW && expired_rc != SQLITE_DONE) return fail("looking for expired messages");
  if (expired_rc == SQLITE_ROW) {
    cleanup.push_back(
        "DELETE FROM queue WHERE state = 0 AND message_id IN "
        "(SELECT id FROM messages WHERE expires_at_ms > 0 AND expires_at_ms <= ?1) "
        "RETURNING message_id");
  }
  any_expired->reset();
  int64_t dropped_rows = 0;
  std::unordered_map<int64_t, int64_t> released;  // message id -> references deleted
  int64_t dropped_messages = 0;
  {
    // Queue rows of client ids without a session: one seek per client id in the queue.
    auto next = db_.prepare("SELECT client_id FROM queue WHERE client_id > ?1 ORDER BY client_id LIMIT 1");
    auto has = db_.prepare("SELECT 1 FROM sessions WHERE client_id = ?1");
    auto del = db_.prepare("DELETE FROM queue WHERE client_id = ?1 RETURNING message_id");
    if (!next || !has || !del) return fail("preparing the queue clean-up");
    std::string after;
    for (;;) {
      next->bind_text(1, after);
      int rc = next->step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return fail("reading the queue's client ids");
      after = next->column_text(0);
      next->reset();
      has->bind_text(1, after);
      rc = has->step();
      has->reset();
      if (rc == SQLITE_ROW) continue;
      if (rc != SQLITE_DONE) return fail("reading sessions");
      del->bind_text(1, after);
      while ((rc = del->step()) == SQLITE_ROW) {
        ++released[del->column_int(0)];
        ++dropped_rows;
      }
      del->reset();
      if (rc != SQLITE_DONE) return fail("deleting the queue of a missing session");
    }
  }
  for (const char* sql : cleanup) {
    auto stmt = db_.prepare(sql);
    if (!stmt) return fail(std::string("preparing \"") + sql + "\"");
    if (std::string_view(sql).find("?1") != std::string_view::npos) stmt->bind(1, now_unix_ms);
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
      ++released[stmt->column_int(0)];
      ++dropped_rows;
    }
    if (rc != SQLITE_DONE) return fail(std::string("running \"") + sql + "\"");
    if (std::string_view(sql).find("RETURNING") == std::string_view::npos) dropped_rows += db_.changes();
  }
  {
    auto del = db_.prepare("DELETE FROM messages WHERE id = ?1 AND refs <= ?2");
    auto dec = db_.prepare("UPDATE messages SET refs = refs - ?2 WHERE id = ?1");
    if (!del || !dec) return fail("preparing the reference updates");
    for (const auto& [id, count] : released) {
      del->bind(1, id);
      del->bind(2, count);
      if (del->run() != SQLITE_DONE) return fail("deleting an unreferenced message");
      if (db_.changes() != 0) {
        ++dropped_rows;
        ++dropped_messages;
        continue;
      }
      dec->bind(1, id);
      dec->bind(2, count);
      if (dec->run() != SQLITE_DONE) return fail("counting down a message's references");
    }
    // Bodies nothing refers to (the partial index messages_unreferenced finds them).
    if (db_.exec("DELETE FROM messages WHERE refs <= 0") != SQLITE_OK) {
      return fail("deleting unreferenced messages");
    }
    dropped_rows += db_.changes();
    dropped_messages += db_.changes();
    if (dropped_messages != 0 &&
        db_.exec("UPDATE counters SET value = value - " + std::to_string(dropped_messages) +
                 " WHERE name = 'messages'") != SQLITE_OK) {
      return fail("updating the message count");
    }
  }
  if (db_.exec("COMMIT") != SQLITE_OK) return fail("cannot commit the cleanup");

  // 3. Load sessions, subscriptions, each queue's entries in flight and its head, QoS 2
  //    state and retained messages. Messages are read with the rows that refer to them
  //    (one MessagePtr per message however many rows refer to it), never as a table scan,
  //    so what this reads and holds depends on the sessions, not on the backlog.
  broker::RestoredState state;
  std::unordered_map<int64_t, broker::MessagePtr> messages;
  auto stored = db_.query_int("SELECT value FROM counters WHERE name = 'messages'");
  if (!stored) return fail("reading the message total");
  std::unordered_map<std::string, size_t> session_index;
  {
    auto q = db_.prepare(
        "SELECT client_id, version, expiry_s, last_seen_ms, will_topic, will_payload, will_qos, "
        "will_retain, will_props, will_delay_s, will_expiry_s FROM sessions ORDER BY client_id");
    if (!q) return fail("reading sessions");
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      broker::RestoredSession rs;
      broker::OpSessionUpsert& s = rs.session;
      s.client_id = q->column_text(0);
      s.version = static_cast<uint8_t>(q->column_int(1));
      s.expiry_s = static_cast<uint32_t>(q->column_int(2));
      s.last_seen_ms = q->column_int(3);
      if (!q->column_is_null(4)) {
        broker::StoredWill w;
        w.topic = q->column_text(4);
        w.payload = q->column_text(5);
        w.qos = static_cast<mqtt::QoS>(q->column_int(6));
        w.retain = q->column_int(7) != 0;
        w.props = q->column_text(8);
        w.delay_s = static_cast<uint32_t>(q->column_int(9));
        w.expiry_s = static_cast<uint32_t>(q->column_int(10));
        s.will = std::make_shared<const broker::StoredWill>(std::move(w));
      }
      session_index.emplace(s.client_id, state.sessions.size());
      state.sessions.push_back(std::move(rs));
    }
    if (rc != SQLITE_DONE) return fail("reading sessions");
  }
  {
    auto q = db_.prepare(
        "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, "
        "subscription_id FROM subscriptions ORDER BY client_id, filter");
    if (!q) return fail("reading subscriptions");
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      broker::OpSubscriptionAdd sub;
      sub.client_id = q->column_text(0);
      sub.filter = q->column_text(1);
      sub.qos = static_cast<mqtt::QoS>(q->column_int(2));
      sub.no_local = q->column_int(3) != 0;
      sub.retain_as_published = q->column_int(4) != 0;
      sub.retain_handling = static_cast<uint8_t>(q->column_int(5));
      sub.subscription_id = static_cast<uint32_t>(q->column_int(6));
      auto it = session_index.find(sub.client_id);
      if (it != session_index.end()) state.sessions[it->second].subscriptions.push_back(std::move(sub));
    }
    if (rc != SQLITE_DONE) return fail("reading subscriptions");
  }
  size_t queued = 0;
  size_t paged_sessions = 0;
  {
    auto q = db_.prepare("SELECT " + std::string(kQueueEntryColumns) +
                         " FROM queue q JOIN messages m ON m.id = q.message_id"
                         " WHERE q.client_id = ?1 ORDER BY q.seq");
    auto last = db_.prepare("SELECT max(seq) FROM queue WHERE client_id = ?1");
    if (!q || !last) return fail("preparing the queue reads");
    for (broker::RestoredSession& rs : state.sessions) {
      q->bind_text_ref(1, rs.session.client_id);
      size_t head = 0;  // entries not in flight loaded so far
      int rc;
      while ((rc = q->step()) == SQLITE_ROW) {
        broker::RestoredQueueEntry e = decode_entry(*q, &messages);
        const bool in_flight = e.state != broker::OutState::Queued && e.packet_id != 0;
        if (!in_flight) {
          if (queue_head != 0 && head == queue_head) {
            rs.paged_from = e.seq;  // the rest stays on disk
            break;
          }
          ++head;
        }
        rs.queue.push_back(std::move(e));
        ++queued;
      }
      q->reset();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail("reading queues");
      if (rs.paged_from != 0) {
        ++paged_sessions;
        last->bind_text_ref(1, rs.session.client_id);
        if (last->step() != SQLITE_ROW) return fail("reading queues");
        rs.next_seq = static_cast<uint64_t>(last->column_int(0)) + 1;
        last->reset();
      } else if (!rs.queue.empty()) {
        rs.next_seq = rs.queue.back().seq + 1;
      }
    }
  }
  {
    auto q = db_.prepare("SELECT client_id, packet_id FROM qos2_in ORDER BY client_id, packet_id");
    if (!q) return fail("reading QoS 2 state");
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      auto it = session_index.find(q->column_text(0));
      if (it != session_index.end()) {
        state.sessions[it->second].qos2_in.push_back(static_cast<uint16_t>(q->column_int(1)));
      }
    }
    if (rc != SQLITE_DONE) return fail("reading QoS 2 state");
  }
  {
    auto q = db_.prepare("SELECT " + std::string(kMessageColumns) +
                         " FROM retained r JOIN messages m ON m.id = r.message_id ORDER BY r.topic");
    if (!q) return fail("reading retained messages");
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      auto [it, fresh] = messages.try_emplace(q->column_int(0));
      if (fresh) it->second = decode_message(*q, 0);
      state.retained.push_back(it->second);
    }
    if (rc != SQLITE_DONE) return fail("reading retained messages");
  }

  restored_ = true;

  stored_messages_.store(*stored);
  log(kLogInfo, path_ + ": restored " + std::to_string(state.sessions.size()) + " sessions, " +
                    std::to_string(queued) + " queued deliveries in memory (" +
                    std::to_string(paged_sessions) + " sessions with more on disk), " +
                    std::to_string(state.retained.size()) + " retained, " +
                    std::to_string(*stored) + " messages stored; dropped " +
                    std::to_string(expired_sessions.size()) + " expired sessions and " +
                    std::to_string(dropped_rows) + " expired or orphaned rows");
  return state;
}

}  // namespace harbor::store
