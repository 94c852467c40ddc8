// A full disk, injected through a wrapper VFS: commits fail, the store turns degraded and
// stops advancing durable_seq, logs once, retries, and commits everything when the fault
// clears. Nothing submitted is lost.
#include "fault_vfs.hpp"
#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

// A store (not started) on the fault VFS with writes working, retrying every 20 ms.
std::unique_ptr<Store> open_on_fault_vfs(const TempDir& dir, StoreOptions options = {}) {
  register_fault_vfs();
  set_fail_writes(false);
  options.vfs_name = kFaultVfsName;
  options.retry_interval = std::chrono::milliseconds(20);
  auto opened = Store::open(settings_for(dir), options);
  EXPECT_TRUE(opened) << (opened ? "" : opened.error());
  return opened ? std::move(*opened) : nullptr;
}

TEST(StoreFault, FullDiskDegradesThenRecoversWithoutLoss) {
  TempDir dir;
  auto settings = settings_for(dir);
  LogCapture logs;
  auto store = open_on_fault_vfs(dir);
  ASSERT_TRUE(store);
  store->set_log(logs.sink());
  ASSERT_TRUE(store->restore(0));
  std::atomic<uint64_t> heard{0};
  store->set_durable_listener([&](uint64_t seq) { heard.store(seq); });
  store->start();

  uint64_t before = store->submit_batch({session("c"), queue_add("c", 1, make_message(1, "t", "a"))});
  ASSERT_TRUE(durable_by(*store, before));
  EXPECT_FALSE(store->degraded());

  set_fail_writes(true);
  uint64_t during = 0;
  for (int i = 2; i <= 50; ++i) {
    during = store->submit(queue_add("c", i, make_message(i, "t", std::string(2000, 'p'))));
  }
  ASSERT_TRUE(wait_until([&] { return store->degraded(); }));
  EXPECT_TRUE(store->commit_failing());
  EXPECT_FALSE(store->full());
  // Several retries happen; none of them lets durable_seq move.
  ASSERT_TRUE(wait_until([&] { return store->stats().failed_commits >= 3; }));
  EXPECT_EQ(store->durable_seq(), before);
  EXPECT_EQ(heard.load(), before);
  EXPECT_GT(failed_writes(), 0);
  EXPECT_EQ(logs.count(kLogError), 1u) << "the fault is logged once";
  {
    std::lock_guard lock(logs.mutex);
    bool named = false;
    for (const auto& [level, text] : logs.lines) {
      if (level == kLogError && text.find(dir.db_path()) != std::string::npos &&
          text.find("full") != std::string::npos) {
        named = true;
      }
    }
    EXPECT_TRUE(named) << "the error names the file and the SQLite error";
  }
  // More work keeps arriving while degraded; it is held, not lost.
  uint64_t late = store->submit(broker::OpQueueRemove{"c", 2});
  EXPECT_GE(store->stats().queued_ops, 50u);

  set_fail_writes(false);
  ASSERT_TRUE(durable_by(*store, late));
  EXPECT_GE(store->durable_seq(), during);
  EXPECT_FALSE(store->degraded());
  EXPECT_EQ(heard.load(), store->durable_seq());
  EXPECT_EQ(logs.count_containing("storing again"), 1u) << "recovery is logged once";
  store->stop();
  store.reset();

  auto reopened = open_store(settings);
  ASSERT_TRUE(reopened);
  auto state = reopened->restore(0);
  ASSERT_TRUE(state) << state.error();
  ASSERT_EQ(state->sessions.size(), 1u);
  const auto& q = state->sessions[0].queue;
  ASSERT_EQ(q.size(), 49u);  // 1..50 without 2
  EXPECT_EQ(q[0].seq, 1u);
  EXPECT_EQ(q[1].seq, 3u);
  EXPECT_EQ(q.back().seq, 50u);
  EXPECT_EQ(q.back().message->payload, std::string(2000, 'p'));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 49);
}

// A failed batch is rolled back with the writer's in-memory reference counts: the retry
// counts the same references again, so a message still referenced is never deleted.
TEST(StoreFault, RetriedBatchKeepsSharedMessage) {
  TempDir dir;
  auto store = open_on_fault_vfs(dir);
  ASSERT_TRUE(store);
  store->set_log([](int, std::string_view) {});
  ASSERT_TRUE(store->restore(0));
  store->start();
  auto shared = make_message(1, "t", "shared");
  uint64_t seq = store->submit_batch({session("a"), session("b"), queue_add("a", 1, shared),
                                      queue_add("b", 1, shared)});
  ASSERT_TRUE(durable_by(*store, seq));

  set_fail_writes(true);
  // "a" acknowledges, plus enough new data that the transaction must write pages.
  std::vector<broker::PersistOp> ops;
  ops.push_back(broker::OpQueueRemove{"a", 1});
  for (int i = 2; i <= 20; ++i) ops.push_back(queue_add("a", i, make_message(i, "t", std::string(4000, 'x'))));
  seq = store->submit_batch(std::move(ops));
  ASSERT_TRUE(wait_until([&] { return store->stats().failed_commits >= 2; }));
  set_fail_writes(false);
  ASSERT_TRUE(durable_by(*store, seq));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE id = 1"), 1)
      << "still referenced by b";
  seq = store->submit(broker::OpQueueRemove{"b", 1});
  ASSERT_TRUE(durable_by(*store, seq));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE id = 1"), 0)
      << "the last reference went";
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 19);
  store->stop();
}

TEST(StoreFault, HeldMemoryIsBoundedAndDurabilityFreezes) {
  TempDir dir;
  StoreOptions options;
  options.max_held_ops = 10;
  LogCapture logs;
  auto store = open_on_fault_vfs(dir, options);
  ASSERT_TRUE(store);
  store->set_log(logs.sink());
  store->start();
  set_fail_writes(true);
  store->submit(session("c"));
  ASSERT_TRUE(wait_until([&] { return store->commit_failing(); }));
  for (int i = 0; i < 20; ++i) store->submit(broker::OpQos2InAdd{"c", uint16_t(i + 1)});
  Stats s = store->stats();
  EXPECT_EQ(s.queued_ops, 10u);
  EXPECT_EQ(s.dropped_ops, 11u);
  set_fail_writes(false);
  ASSERT_TRUE(wait_until([&] { return !store->commit_failing(); }));
  ASSERT_TRUE(wait_until([&] { return store->stats().queued_ops == 0; }));
  // What was dropped can never be reported durable: durable_seq stays where it was.
  EXPECT_EQ(store->durable_seq(), 0u);
  EXPECT_EQ(logs.count(kLogError), 2u);  // the fault, the overflow
  store->stop();
}

}  // namespace
}  // namespace harbor::store::test
