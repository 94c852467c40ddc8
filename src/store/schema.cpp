#include "store/schema.hpp"

#include <array>

namespace harbor::store {
namespace {

// Step N takes the schema from version N to N + 1. Append, never edit a shipped step.
// Layout (docs/persistence.md has the why):
//   messages       one row per stored message body, referenced by queue and retained rows
//   sessions       one row per persistent session, will columns NULL when there is no will
//   subscriptions  (client_id, filter) -> options
//   queue          per-session delivery queue and outbound inflight state, (client_id, seq)
//   qos2_in        inbound QoS 2 packet ids awaiting PUBREL
//   retained       topic -> message
// WITHOUT ROWID tables keep the composite primary key as the only b-tree, so each lookup
// by key is one index search. Whether a message is still referenced is its refs column
// (queue rows + retained rows, kept by OpApplier), never searched for in the tables.
constexpr std::array<const char*, kSchemaVersion> kMigrations = {
    R"sql(
CREATE TABLE messages (
  id             INTEGER PRIMARY KEY,
  topic          TEXT    NOT NULL,
  payload        BLOB    NOT NULL,
  qos            INTEGER NOT NULL,
  retain         INTEGER NOT NULL,
  props          BLOB    NOT NULL,
  expires_at_ms  INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL
);
CREATE INDEX messages_expiry ON messages(expires_at_ms) WHERE expires_at_ms > 0;

CREATE TABLE sessions (
  client_id     TEXT    PRIMARY KEY,
  version       INTEGER NOT NULL,
  expiry_s      INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  will_topic    TEXT,
  will_payload  BLOB,
  will_qos      INTEGER,
  will_retain   INTEGER,
  will_props    BLOB,
  will_delay_s  INTEGER,
  will_expiry_s INTEGER
) WITHOUT ROWID;

CREATE TABLE subscriptions (
  client_id           TEXT    NOT NULL,
  filter              TEXT    NOT NULL,
  qos                 INTEGER NOT NULL,
  no_local            INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling     INTEGER NOT NULL,
  subscription_id     INTEGER NOT NULL,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;

CREATE TABLE queue (
  client_id  TEXT    NOT NULL,
  seq        INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  qos        INTEGER NOT NULL,
  retain     INTEGER NOT NULL,
  sub_ids    BLOB    NOT NULL,
  state      INTEGER NOT NULL,
  packet_id  INTEGER NOT NULL,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE INDEX queue_message ON queue(message_id);

CREATE TABLE qos2_in (
  client_id TEXT    NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;

CREATE TABLE retained (
  topic      TEXT    PRIMARY KEY,
  message_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX retained_message ON retained(message_id);
)sql",
    // 2: references to messages are counted by the writer in memory (rebuilt on restore),
    // so the reverse lookups are gone, and with them one index write per queue row.
    R"sql(
DROP INDEX queue_message;
DROP INDEX retained_message;
)sql",
    // 3: the shared subscription a queue entry came through (NULL: none), so a restored
    // entry can still be handed to another member of its group (issue 11).
    R"sql(
ALTER TABLE queue ADD COLUMN shared_filter TEXT;
)sql",
    // 4: each message row carries its reference count, so neither the writer nor restore
    // keeps one entry per stored message in memory (issue 12). Counted once here; a body
    // nothing refers to goes. The writer deletes a row in the statement that would take its
    // count to 0, so the partial index stays empty and restore finds a stray body (written
    // by hand, or by a bug) without scanning the table.
    R"sql(
ALTER TABLE messages ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_unreferenced ON messages(id) WHERE refs <= 0;
UPDATE messages SET refs = r.n
  FROM (SELECT message_id, count(*) AS n
          FROM (SELECT message_id FROM queue UNION ALL SELECT message_id FROM retained)
         GROUP BY message_id) AS r
 WHERE messages.id = r.message_id;
DELETE FROM messages WHERE refs = 0;
-- Running totals kept by the writer with each commit, so that a start reads them instead
-- of counting the tables ('messages': rows in messages).
CREATE TABLE counters (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters(name, value) SELECT 'messages', count(*) FROM messages;
)sql",
};

std::string fail(Db& db, const std::string& path, const std::string& what) {
  std::string text = path + ": " + what + ": " + db.error_message();
  if (db.in_transaction()) db.exec("ROLLBACK");
  return text;
}

}  // namespace

tl::expected<void, std::string> migrate_schema(Db& db, const std::string& path) {
  // BEGIN IMMEDIATE takes the write lock first, so two processes cannot migrate at once.
  if (db.exec("BEGIN IMMEDIATE") != SQLITE_OK) {
    return tl::unexpected(fail(db, path, "cannot start the schema transaction"));
  }
  auto version = db.query_int("PRAGMA user_version");
  if (!version) return tl::unexpected(fail(db, path, "cannot read the schema version"));
  if (*version > kSchemaVersion) {
    db.exec("ROLLBACK");
    return tl::unexpected(path + ": schema version " + std::to_string(*version) +
                          " is newer than this HarborMQ supports (" +
                          std::to_string(kSchemaVersion) +
                          "); run the HarborMQ release that wrote it, or point "
                          "sqlite.mounted_file_path at another directory");
  }
  if (*version < 0) {
    db.exec("ROLLBACK");
    return tl::unexpected(path + ": invalid schema version " + std::to_string(*version) +
                          "; this is not a HarborMQ database, move it away");
  }
  if (*version == 0) {
    // Version 0 with tables in it is somebody else's database: refuse to mix schemas.
    auto tables = db.query_int("SELECT count(*) FROM sqlite_schema");
    if (!tables) return tl::unexpected(fail(db, path, "cannot read the schema"));
    if (*tables != 0) {
      db.exec("ROLLBACK");
      return tl::unexpected(path +
                            ": contains tables but no HarborMQ schema version; this is not a "
                            "HarborMQ database, move it away or choose another "
                            "sqlite.mounted_file_path");
    }
  }
  for (int64_t v = *version; v < kSchemaVersion; ++v) {
    if (db.exec(kMigrations[static_cast<size_t>(v)]) != SQLITE_OK) {
      return tl::unexpected(
          fail(db, path, "schema migration to version " + std::to_string(v + 1) + " failed"));
    }
  }
  if (db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion)) != SQLITE_OK) {
    return tl::unexpected(fail(db, path, "cannot write the schema version"));
  }
  if (db.exec("COMMIT") != SQLITE_OK) {
    return tl::unexpected(fail(db, path, "cannot commit the schema"));
  }
  return {};
}

}  // namespace harbor::store
