// Opening: schema creation, user_version, refusing newer or foreign files, corrupt files.
#include <fstream>

#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

TEST(StoreSchema, CreatesDirectorySchemaAndVersion) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.mounted_file_path = dir.path() + "/nested/data";
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
  for (const char* index : {"queue_message", "retained_message", "messages_expiry"}) {
    EXPECT_EQ(count_rows(db, std::string("SELECT count(*) FROM sqlite_schema WHERE type='index' AND name='") +
                                 index + "'"),
              1)
        << index;
  }
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
  settings.mounted_file_path = dir.path() + "/file/sub";
  auto store = Store::open(settings);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().find(settings.mounted_file_path), std::string::npos) << store.error();
}

}  // namespace
}  // namespace harbor::store::test
