// The queue beyond a session's in-memory head: restore loads the entries in flight and a
// bounded head, says where the rest begins, and read_queue() pages it in from committed
// data through a read-only connection of the calling thread.
#include <filesystem>
#include <thread>

#include "store/queue_reader.hpp"
#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

// Session "c" with entries 1..n (message i each) committed; entries 1 and 2 are in flight.
void store_queue(const StoreSettings& settings, int n) {
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->restore(0));
  store->start();
  std::vector<broker::PersistOp> ops{session("c")};
  for (int i = 1; i <= n; ++i) ops.push_back(queue_add("c", i, make_message(i, "t", "p" + std::to_string(i))));
  ops.push_back(broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 11});
  ops.push_back(broker::OpQueueUpdate{"c", 2, broker::OutState::AwaitPubrec, 12});
  uint64_t last = store->submit_batch(std::move(ops));
  ASSERT_TRUE(durable_by(*store, last));
  store->stop();
}

TEST(StorePaging, RestoreLoadsTheEntriesInFlightAndABoundedHead) {
  TempDir dir;
  auto settings = settings_for(dir);
  store_queue(settings, 1000);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(0, 10);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  const auto& rs = state->sessions[0];
  ASSERT_EQ(rs.queue.size(), 12u) << "2 in flight + a head of 10";
  EXPECT_EQ(rs.queue[0].state, broker::OutState::AwaitPuback);
  EXPECT_EQ(rs.queue[1].packet_id, 12);
  for (size_t i = 0; i < rs.queue.size(); ++i) EXPECT_EQ(rs.queue[i].seq, i + 1);
  EXPECT_EQ(rs.queue[11].message->payload, "p12");
  EXPECT_EQ(rs.paged_from, 13u);
  EXPECT_EQ(rs.next_seq, 1001u);
  EXPECT_EQ(store->stats().stored_messages, 1000u) << "read from counters, not by loading";

  // Without a bound everything is loaded, as before.
  store = open_store(settings);
  state = store->restore(0);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->sessions[0].queue.size(), 1000u);
  EXPECT_EQ(state->sessions[0].paged_from, 0u);
  EXPECT_EQ(state->sessions[0].next_seq, 1001u);
}

TEST(StorePaging, ReadQueuePagesInOrderFromCommittedRowsOnly) {
  TempDir dir;
  auto settings = settings_for(dir);
  store_queue(settings, 300);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(0, 10);
  ASSERT_TRUE(state);
  store->start();
  uint64_t from = state->sessions[0].paged_from;
  ASSERT_EQ(from, 13u);
  std::vector<broker::RestoredQueueEntry> got;
  std::string error;
  // Page through the rest, 100 at a time.
  while (true) {
    std::vector<broker::RestoredQueueEntry> page;
    ASSERT_TRUE(store->read_queue("c", from, 100, page, error)) << error;
    if (page.empty()) break;
    EXPECT_LE(page.size(), 100u);
    from = page.back().seq + 1;
    for (auto& e : page) got.push_back(std::move(e));
  }
  ASSERT_EQ(got.size(), 300u - 12u);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].seq, 13 + i);
    ASSERT_EQ(got[i].message->payload, "p" + std::to_string(13 + i));
    ASSERT_EQ(got[i].state, broker::OutState::Queued);
  }
  // An entry submitted but not committed yet is not seen; once committed it is. The writer
  // lingers so the read falls before the commit.
  auto lingering = settings;
  store->stop();
  lingering.commit_interval = std::chrono::milliseconds(300);
  store = open_store(lingering);
  ASSERT_TRUE(store->restore(0, 10));
  store->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the writer is idle now
  uint64_t seq = store->submit(queue_add("c", 301, make_message(301, "t", "late")));
  std::vector<broker::RestoredQueueEntry> page;
  ASSERT_TRUE(store->read_queue("c", 301, 10, page, error)) << error;
  // Still uncommitted after the read, so it was uncommitted during it.
  ASSERT_LT(store->durable_seq(), seq) << "the writer committed inside its 300 ms linger";
  EXPECT_TRUE(page.empty()) << "an uncommitted entry was read";
  ASSERT_TRUE(durable_by(*store, seq));
  page.clear();
  ASSERT_TRUE(store->read_queue("c", 301, 10, page, error)) << error;
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].message->payload, "late");
  // Another session's rows are never returned; an unknown session reads nothing.
  page.clear();
  ASSERT_TRUE(store->read_queue("d", 0, 10, page, error)) << error;
  EXPECT_TRUE(page.empty());
  store->stop();
}

TEST(StorePaging, EachReadingThreadHasItsOwnConnection) {
  TempDir dir;
  auto settings = settings_for(dir);
  store_queue(settings, 50);
  QueueReader reader(dir.db_path(), "");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        std::vector<broker::RestoredQueueEntry> page;
        if (reader.read("c", 1, 50, page) && page.size() == 50 && page[49].seq == 50) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 60);
  EXPECT_EQ(reader.connections(), 3u);
  reader.close();
  EXPECT_EQ(reader.connections(), 0u);
}

TEST(StorePaging, ReadOfAMissingDatabaseIsAnErrorNamingTheFile) {
  TempDir dir;
  QueueReader reader(dir.db_path() + ".absent", "");
  std::vector<broker::RestoredQueueEntry> page;
  auto read = reader.read("c", 1, 10, page);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().find(".absent"), std::string::npos) << read.error();
  EXPECT_TRUE(page.empty());
}

uint64_t file_bytes(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

// Disk goes back after a drain: a new database is in incremental auto-vacuum, and once the
// writer is idle it frees the pages the acknowledged rows left, then truncates the WAL.
TEST(StoreVacuum, FileShrinksAfterTheQueueDrains) {
  TempDir dir;
  auto settings = settings_for(dir);
  StoreOptions options;
  options.idle_checkpoint = std::chrono::milliseconds(50);
  auto store = open_store(settings, options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->restore(0));
  store->start();
  const std::string payload(1000, 'x');
  std::vector<broker::PersistOp> ops{session("c")};
  for (int i = 1; i <= 20000; ++i) ops.push_back(queue_add("c", i, make_message(i, "t", payload)));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(ops))));
  const std::string db = dir.db_path();
  // The idle checkpoint copies the rows into the file (bounded wait).
  for (int i = 0; i < 200 && file_bytes(db) <= 20000u * 1000u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t full = file_bytes(db);
  ASSERT_GT(full, 20000u * 1000u) << "the rows are in the file";
  std::vector<broker::PersistOp> removes;
  for (int i = 1; i <= 20000; ++i) removes.push_back(broker::OpQueueRemove{"c", static_cast<uint64_t>(i)});
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(removes))));
  // Idle: checkpoint, vacuum in steps, truncate (bounded wait, the test's only clock).
  for (int i = 0; i < 200 && !(file_bytes(db) < full / 4 && file_bytes(db + "-wal") == 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LT(file_bytes(db), full / 4) << "the free pages went back";
  EXPECT_EQ(file_bytes(db + "-wal"), 0u) << "the WAL is truncated after the vacuum";
  EXPECT_GT(store->stats().vacuumed_pages, 0u);
  store->stop();
}

// A file made without incremental auto-vacuum (schema 3 and earlier) is converted at open.
TEST(StoreVacuum, OldFileIsConvertedAtOpen) {
  TempDir dir;
  auto settings = settings_for(dir);
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    store->stop();
  }
  const std::string db = dir.db_path();
  {
    auto raw = Db::open(db, "");
    ASSERT_TRUE(raw);
    ASSERT_EQ(raw->exec("PRAGMA auto_vacuum = NONE"), SQLITE_OK);
    ASSERT_EQ(raw->exec("VACUUM"), SQLITE_OK);
    ASSERT_EQ(*raw->query_int("PRAGMA auto_vacuum"), 0);
  }
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  store->stop();
  auto raw = Db::open(db, "");
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw->query_int("PRAGMA auto_vacuum"), 2) << "incremental";
}

}  // namespace
}  // namespace harbor::store::test
