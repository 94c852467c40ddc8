// Opening: schema creation, user_version, refusing newer or foreign files, corrupt files.
#include <fstream>

#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

TEST(StoreSchema, CreatesDirectorySchemaAndVersion) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.directory = dir.path() + "/nested/data";
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->path(), dir.path() + "/nested/data/harbormq.db");
    EXPECT_GT(store->usage().db_bytes, 0u);
    EXPECT_NE(store->describe_size().find("harbormq.db"), std::string::npos);
  }
  std::string db = dir.path() + "/nested/data/harbormq.db";
  EXPECT_EQ(count_rows(db, "PRAGMA user_version"), kSchemaVersion);
  for (const char* table : {"messages", "sessions", "subscriptions", "queue", "qos2_in", "retained"}) {
    EXPECT_EQ(count_rows(db, std::string("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='") +
                                 table + "'"),
              1)
        << table;
  }
  auto index_count = [&](const char* index) {
    return count_rows(db, std::string("SELECT count(*) FROM sqlite_schema WHERE type='index' AND name='") +
                              index + "'");
  };
  EXPECT_EQ(index_count("messages_expiry"), 1);
  // Version 2 counts message references in memory: no reverse-lookup indexes.
  EXPECT_EQ(index_count("queue_message"), 0);
  EXPECT_EQ(index_count("retained_message"), 0);
  auto mode = Db::open(db, "");
  ASSERT_TRUE(mode);
  EXPECT_EQ(*mode->query_text("PRAGMA journal_mode"), "wal");
}

TEST(StoreSchema, ReopenKeepsVersionAndData) {
  TempDir dir;
  auto settings = settings_for(dir);
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    store->start();
    store->submit(session("c1"));
    store->stop();
  }
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(0);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  EXPECT_EQ(count_rows(dir.db_path(), "PRAGMA user_version"), kSchemaVersion);
}

// A version 1 file (with the reverse-lookup indexes) is migrated forward and keeps its data.
TEST(StoreSchema, MigratesVersion1Forward) {
  TempDir dir;
  auto settings = settings_for(dir);
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    store->start();
    auto m = make_message(5, "t", "kept");
    store->submit_batch({session("c1"), queue_add("c1", 1, m), broker::OpRetainedSet{m}});
    store->stop();
  }
  {
    auto db = Db::open(dir.db_path(), "");
    ASSERT_TRUE(db);
    // Back to version 1's layout: its indexes, no queue.shared_filter (version 3), no
    // messages.refs (version 4).
    ASSERT_EQ(db->exec("CREATE INDEX queue_message ON queue(message_id);"
                       "CREATE INDEX retained_message ON retained(message_id);"
                       "ALTER TABLE queue DROP COLUMN shared_filter;"
                       "DROP INDEX messages_unreferenced;"
                       "ALTER TABLE messages DROP COLUMN refs;"
                       "DROP TABLE counters;"
                       "INSERT INTO messages(id, topic, payload, qos, retain, props, expires_at_ms,"
                       " received_at_ms) VALUES (9, 'u', x'', 1, 0, x'', 0, 0);"
                       "PRAGMA user_version = 1"),
              SQLITE_OK);
  }
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  EXPECT_EQ(count_rows(dir.db_path(), "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM sqlite_schema WHERE type='index' AND "
                                      "name IN ('queue_message', 'retained_message')"),
            0);
  auto state = store->restore(0);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  ASSERT_EQ(state->sessions[0].queue.size(), 1u);
  EXPECT_EQ(state->sessions[0].queue[0].message->payload, "kept");
  EXPECT_EQ(state->sessions[0].queue[0].shared_filter, "");  // the column added by step 3
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM pragma_table_info('queue') WHERE "
                                      "name = 'shared_filter'"),
            1);
  ASSERT_EQ(state->retained.size(), 1u);
  EXPECT_EQ(state->retained[0].get(), state->sessions[0].queue[0].message.get());
  // Step 4 counted the queue row and the retained row of message 5, and dropped message 9,
  // which nothing referred to.
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT refs FROM messages WHERE id = 5"), 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT value FROM counters WHERE name = 'messages'"), 1);
  EXPECT_EQ(store->stats().stored_messages, 1u);
}

TEST(StoreSchema, RefusesNewerSchemaVersion) {
  TempDir dir;
  auto settings = settings_for(dir);
  { ASSERT_TRUE(open_store(settings)); }
  {
    auto db = Db::open(dir.db_path(), "");
    ASSERT_TRUE(db);
    ASSERT_EQ(db->exec("PRAGMA user_version = 99"), SQLITE_OK);
  }
  auto store = Store::open(settings);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().find(dir.db_path()), std::string::npos) << store.error();
  EXPECT_NE(store.error().find("newer"), std::string::npos) << store.error();
  EXPECT_NE(store.error().find("99"), std::string::npos) << store.error();
  // The file is left as it was.
  EXPECT_EQ(count_rows(dir.db_path(), "PRAGMA user_version"), 99);
}

TEST(StoreSchema, RefusesForeignDatabase) {
  TempDir dir;
  {
    auto db = Db::open(dir.db_path(), "");
    ASSERT_TRUE(db);
    ASSERT_EQ(db->exec("CREATE TABLE other(x)"), SQLITE_OK);
  }
  auto store = Store::open(settings_for(dir));
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().find(dir.db_path()), std::string::npos) << store.error();
  EXPECT_NE(store.error().find("not a HarborMQ database"), std::string::npos) << store.error();
}

TEST(StoreSchema, CorruptFileFailsNamingTheFile) {
  TempDir dir;
  {
    std::ofstream out(dir.db_path(), std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 7919) & 0xFF));
  }
  auto store = Store::open(settings_for(dir));
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().find(dir.db_path()), std::string::npos) << store.error();
  EXPECT_NE(store.error().find("move the file away"), std::string::npos) << store.error();
}

TEST(StoreSchema, UncreatableDirectoryFails) {
  TempDir dir;
  {
    std::ofstream out(dir.path() + "/file");
    out << "x";
  }
  auto settings = settings_for(dir);
  settings.directory = dir.path() + "/file/sub";
  auto store = Store::open(settings);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().find(settings.directory), std::string::npos) << store.error();
}

}  // namespace
}  // namespace harbor::store::test
