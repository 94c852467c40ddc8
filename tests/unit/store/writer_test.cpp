// The writer thread: group commit, durable_seq and its listener, draining on stop(),
// add/remove elision inside one batch, and the disk_cache_size bound.
#include <atomic>
#include <thread>

#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

// A session and its queue entries 1..n, each with a message of its own (ids 1..n).
std::vector<broker::PersistOp> session_with_entries(const std::string& client, int n) {
  std::vector<broker::PersistOp> ops{session(client)};
  for (int i = 1; i <= n; ++i) {
    ops.push_back(queue_add(client, static_cast<uint64_t>(i),
                            make_message(static_cast<broker::MessageId>(i), "t", "p")));
  }
  return ops;
}

TEST(StoreWriter, GroupCommitBatchesManyOpsIntoFewTransactions) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  std::atomic<uint64_t> heard{0};
  std::atomic<int> calls{0};
  store->set_durable_listener([&](uint64_t seq) {
    heard.store(seq);
    calls.fetch_add(1);
  });
  ASSERT_TRUE(store->restore(0));
  store->start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1250;
  std::atomic<uint64_t> max_seq{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        uint64_t seq = store->submit(broker::OpQos2InAdd{"c" + std::to_string(t), uint16_t(i + 1)});
        uint64_t prev = max_seq.load();
        while (seq > prev && !max_seq.compare_exchange_weak(prev, seq)) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(max_seq.load(), uint64_t(kThreads * kPerThread));
  ASSERT_TRUE(durable_by(*store, max_seq.load()));
  ASSERT_TRUE(wait_until([&] { return heard.load() == max_seq.load(); }));
  Stats s = store->stats();
  EXPECT_EQ(s.committed_ops, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(s.submitted_ops, uint64_t(kThreads * kPerThread));
  EXPECT_LT(s.commits, 500u) << "ops were not grouped";
  EXPECT_LE(s.max_batch, 1000u);
  EXPECT_GT(s.mean_batch(), 10.0);
  EXPECT_EQ(uint64_t(calls.load()), s.commits);
  uint64_t hist_total = 0;
  for (uint64_t b : s.batch_histogram) hist_total += b;
  EXPECT_EQ(hist_total, s.commits);
  EXPECT_EQ(s.queued_ops, 0u);
  store->stop();
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM qos2_in"), kThreads * kPerThread);
}

TEST(StoreWriter, CommitBatchCapsOpsPerTransaction) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.commit_batch = 100;
  settings.commit_interval = std::chrono::milliseconds(50);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  std::vector<broker::PersistOp> ops;
  for (int i = 0; i < 1000; ++i) ops.push_back(broker::OpQos2InAdd{"c", uint16_t(i + 1)});
  store->start();
  uint64_t last = store->submit_batch(std::move(ops));
  // Batch full: no need to wait for the 50 ms timer ten times over.
  ASSERT_TRUE(
      wait_until([&] { return store->durable_seq() >= last; }, std::chrono::milliseconds(400)));
  Stats s = store->stats();
  EXPECT_EQ(s.max_batch, 100u);
  EXPECT_EQ(s.commits, 10u);
  store->stop();
}

TEST(StoreWriter, StopDrainsEverythingSubmitted) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.commit_interval = std::chrono::milliseconds(200);
  uint64_t last = 0;
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    store->start();
    for (int i = 0; i < 3000; ++i) {
      last = store->submit(
          broker::OpSubscriptionAdd{"c", "f/" + std::to_string(i), 1, false, false, 0, 0});
    }
    store->submit(session("c"));
    last += 1;
    store->stop();
    EXPECT_EQ(store->durable_seq(), last);
    EXPECT_EQ(store->usage().wal_bytes, 0u) << "stop() truncates the WAL";
  }
  auto store = open_store(settings);
  auto state = store->restore(0);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  EXPECT_EQ(state->sessions[0].subscriptions.size(), 3000u);
}

TEST(StoreWriter, StopWithoutStartCommitsOnTheCallingThread) {
  TempDir dir;
  auto settings = settings_for(dir);
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    store->submit(session("c"));
  }  // destructor stops
  auto store = open_store(settings);
  auto state = store->restore(0);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->sessions.size(), 1u);
}

TEST(StoreWriter, MessageAcknowledgedInsideOneBatchNeverLeavesARow) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("c"));
  ops.push_back(queue_add("c", 1, make_message(1, "t", "fast")));
  ops.push_back(broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 1});
  ops.push_back(broker::OpQueueRemove{"c", 1});
  ops.push_back(queue_add("c", 2, make_message(2, "t", "slow")));
  uint64_t last = store->submit_batch(std::move(ops));
  ASSERT_TRUE(durable_by(*store, last));
  Stats s = store->stats();
  EXPECT_EQ(s.elided_ops, 3u);
  EXPECT_EQ(s.stored_messages, 1u);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 1);
  store->stop();
}

// A stored entry that is sent and acknowledged within one batch (a queue drain) is deleted
// without its state UPDATE; an entry only sent keeps its new state and packet id.
TEST(StoreWriter, StoredEntrySentAndAcknowledgedInOneBatchSkipsTheUpdate) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = store->submit_batch({session("c"), queue_add("c", 1, make_message(1, "t", "a")),
                                       queue_add("c", 2, make_message(2, "t", "b"))});
  ASSERT_TRUE(durable_by(*store, last));
  const uint64_t elided_before = store->stats().elided_ops;
  last = store->submit_batch({broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 7},
                              broker::OpQueueUpdate{"c", 2, broker::OutState::AwaitPuback, 8},
                              broker::OpQueueRemove{"c", 1}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(store->stats().elided_ops, elided_before + 1) << "entry 1's UPDATE never ran";
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 1);
  // Entry 2's QoS 1 state is deferred, and written once the writer has nothing else to do.
  EXPECT_TRUE(wait_until(
      [&] { return count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 2") == 8; }));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT state FROM queue WHERE seq = 2"),
            static_cast<int64_t>(broker::OutState::AwaitPuback));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1);
  store->stop();
}

// A QoS 1 entry's in-flight state, for a row of an earlier batch, waits until it is
// deferred_max_age old (0 here: one batch): when its acknowledgement comes with the next
// batch the UPDATE never runs; a state still wanted then is written by that batch. QoS 2
// states are written by their own batch.
TEST(StoreWriter, QoS1InflightStateWaitsForItsAcknowledgementUntilItIsDue) {
  TempDir dir;
  StoreOptions options;
  options.deferred_wait = std::chrono::hours(1);  // the idle writer does not write it first
  options.deferred_max_age = std::chrono::milliseconds(0);
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = store->submit_batch(session_with_entries("c", 3));
  ASSERT_TRUE(durable_by(*store, last));
  const uint64_t elided_before = store->stats().elided_ops;
  last = store->submit_batch({broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 7},
                              broker::OpQueueUpdate{"c", 2, broker::OutState::AwaitPuback, 8},
                              broker::OpQueueUpdate{"c", 3, broker::OutState::AwaitPubrec, 9}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 3"), 9)
      << "a QoS 2 state is never deferred";
  // The next batch acknowledges entry 1 and brings something else: entry 2's state goes in
  // with it, entry 1's never.
  last = store->submit_batch(
      {broker::OpQueueRemove{"c", 1, 1}, broker::OpSubscriptionAdd{"c", "x/#", 1}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(store->stats().elided_ops, elided_before + 1) << "entry 1's UPDATE never ran";
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue WHERE seq = 1"), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 2"), 8);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT state FROM queue WHERE seq = 2"),
            static_cast<int64_t>(broker::OutState::AwaitPuback));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 2);
  store->stop();
}

// Deferred states younger than deferred_max_age wait across batches, so an acknowledgement
// several batches later still elides the UPDATE; past deferred_max_entries the oldest one
// is written by the next batch.
TEST(StoreWriter, DeferredStatesWaitAcrossBatchesWithinTheirCountBound) {
  TempDir dir;
  StoreOptions options;
  options.deferred_wait = std::chrono::hours(1);
  options.deferred_max_age = std::chrono::hours(1);
  options.deferred_max_entries = 2;
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = store->submit_batch(session_with_entries("c", 3));
  ASSERT_TRUE(durable_by(*store, last));
  const uint64_t elided_before = store->stats().elided_ops;
  for (uint64_t seq = 1; seq <= 3; ++seq) {  // one batch each: deferred in this order
    last = store->submit(broker::OpQueueUpdate{"c", seq, broker::OutState::AwaitPuback,
                                               static_cast<uint16_t>(10 + seq)});
    ASSERT_TRUE(durable_by(*store, last));
  }
  // Three held, two allowed: the batch after the third writes entry 1's state only.
  last = store->submit(broker::OpSubscriptionAdd{"c", "x/#", 1});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 1"), 11);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 2"), 0);
  // Entry 2 acknowledged four batches after it was sent: its UPDATE never runs.
  last = store->submit(broker::OpQueueRemove{"c", 2, 2});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(store->stats().elided_ops, elided_before + 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue WHERE seq = 2"), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 3"), 0);
  store->stop();
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 3"), 13)
      << "the stop writes what is still deferred";
}

// The client ids of deferred states are kept once each and dropped when their states are
// gone (here 1,000 of 1,100 clients acknowledge); the states left still reach the right rows.
TEST(StoreWriter, DeferredStatesOfManyClientsKeepTheirClientIds) {
  TempDir dir;
  StoreOptions options;
  options.deferred_wait = std::chrono::hours(1);
  options.deferred_max_age = std::chrono::hours(1);
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  constexpr int kClients = 1100;
  auto id = [](int i) { return "client-" + std::to_string(i); };
  std::vector<broker::PersistOp> adds, updates, removes;
  for (int i = 0; i < kClients; ++i) {
    adds.push_back(session(id(i)));
    adds.push_back(queue_add(id(i), 1, make_message(static_cast<uint64_t>(i + 1), "t", "p")));
    updates.push_back(broker::OpQueueUpdate{id(i), 1, broker::OutState::AwaitPuback,
                                            static_cast<uint16_t>(i + 1)});
    if (i < 1000) removes.push_back(broker::OpQueueRemove{id(i), 1, i + 1});
  }
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(adds))));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(updates))));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(removes))));
  // One more state after the ids were compacted, for a client that had one before.
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpQueueUpdate{
                                     id(1050), 1, broker::OutState::AwaitPuback, 4242})));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue WHERE packet_id != 0"), 0);
  store->stop();
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 100);
  EXPECT_EQ(count_rows(dir.db_path(),
                       "SELECT count(*) FROM queue WHERE state = 1 AND "
                       "packet_id = CAST(substr(client_id, 8) AS INTEGER) + 1"),
            99);
  EXPECT_EQ(
      count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE client_id = 'client-1050'"),
      4242);
}

// A deferred state still pending at stop is written by the stop.
TEST(StoreWriter, DeferredInflightStateIsWrittenAtStop) {
  TempDir dir;
  StoreOptions options;
  options.deferred_wait = std::chrono::hours(1);  // only the stop writes it
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = store->submit_batch({session("c"), queue_add("c", 1, make_message(1, "t", "a"))});
  ASSERT_TRUE(durable_by(*store, last));
  last = store->submit(broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 7});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 1"), 0);
  store->stop();
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT packet_id FROM queue WHERE seq = 1"), 7);
}

// Stored entries removed by one batch are deleted at its end, consecutive seqs of a client
// in one range: only the removed rows go, and each message row goes with its last reference.
TEST(StoreWriter, RemovalsOfOneBatchDeleteExactlyTheirRows) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  std::vector<broker::PersistOp> ops{session("c"), session("d")};
  broker::MessagePtr shared = make_message(100, "t", "shared");
  for (int i = 1; i <= 40; ++i) ops.push_back(queue_add("c", i, make_message(i, "t", "p")));
  ops.push_back(queue_add("c", 41, shared));
  ops.push_back(queue_add("d", 1, shared));
  uint64_t last = store->submit_batch(std::move(ops));
  ASSERT_TRUE(durable_by(*store, last));

  // Out of order, with gaps: seqs 3..20 and 30..35, 38, and 41 (whose message d still holds).
  std::vector<broker::PersistOp> removes;
  for (int i = 20; i >= 3; --i) removes.push_back(broker::OpQueueRemove{"c", uint64_t(i)});
  for (int i : {38, 30, 31, 32, 33, 34, 35, 41})
    removes.push_back(broker::OpQueueRemove{"c", uint64_t(i)});
  removes.push_back(broker::OpQueueRemove{"c", 999});  // no such row: nothing happens
  last = store->submit_batch(std::move(removes));
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue WHERE client_id = 'c'"), 41 - 26);
  EXPECT_EQ(count_rows(dir.db_path(),
                       "SELECT count(*) FROM queue WHERE client_id = 'c' AND seq IN "
                       "(1, 2, 21, 29, 36, 37, 39, 40)"),
            8);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue WHERE client_id = 'd'"), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 41 - 25);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE id = 100"), 1)
      << "a message still referenced by another session was deleted";
  EXPECT_EQ(store->stats().stored_messages, uint64_t(41 - 25));
  store->stop();

  auto reopened = open_store(settings_for(dir));
  auto state = reopened->restore(0);
  ASSERT_TRUE(state);
  size_t entries = 0;
  for (const auto& sess : state->sessions) entries += sess.queue.size();
  EXPECT_EQ(entries, size_t(41 - 26 + 1));
}

// A session deleted in the batch that also removed some of its entries: each reference is
// released once, so a message shared with another session keeps its row.
TEST(StoreWriter, SessionDeleteAfterRemovalsInOneBatchReleasesEachReferenceOnce) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  broker::MessagePtr a = make_message(1, "t", "a");
  broker::MessagePtr b = make_message(2, "t", "b");
  uint64_t last =
      store->submit_batch({session("c"), session("d"), queue_add("c", 1, a), queue_add("c", 2, b),
                           queue_add("d", 1, a), queue_add("d", 2, b)});
  ASSERT_TRUE(durable_by(*store, last));
  last = store->submit_batch({broker::OpQueueRemove{"c", 1}, broker::OpSessionDelete{"c"}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 2);
  // d's acknowledgements now free both messages.
  last = store->submit_batch({broker::OpQueueRemove{"d", 1}, broker::OpQueueRemove{"d", 2}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 0);
  EXPECT_EQ(store->stats().stored_messages, 0u);
  store->stop();
}

// Reference counts live in messages.refs: a second receiver's entry written by a later batch
// counts up the stored row, the count survives a restart without being recounted, and each
// delete path (a run of ids, a chunk of scattered ids, a single id) counts down a row that is
// still referenced instead of deleting it.
TEST(StoreWriter, ReferenceCountsLiveInTheDatabaseAcrossBatchesAndRestarts) {
  TempDir dir;
  auto settings = settings_for(dir);
  std::vector<broker::MessagePtr> msgs;
  for (int i = 1; i <= 100; ++i) msgs.push_back(make_message(i, "t", "p" + std::to_string(i)));
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->restore(0));
    store->start();
    std::vector<broker::PersistOp> ops{session("c"), session("d")};
    for (int i = 1; i <= 100; ++i) ops.push_back(queue_add("c", i, msgs[i - 1]));
    uint64_t last = store->submit_batch(std::move(ops));
    ASSERT_TRUE(durable_by(*store, last));
    // d gets ids 5 (inside c's run 1..10), 41 (among scattered odd ids) and 99 (alone), and
    // message 60 also becomes retained.
    last = store->submit_batch({queue_add("d", 1, msgs[4]), queue_add("d", 2, msgs[40]),
                                queue_add("d", 3, msgs[98]), broker::OpRetainedSet{msgs[59]}});
    ASSERT_TRUE(durable_by(*store, last));
    EXPECT_EQ(count_rows(dir.db_path(), "SELECT refs FROM messages WHERE id = 5"), 2);
    EXPECT_EQ(count_rows(dir.db_path(), "SELECT refs FROM messages WHERE id = 60"), 2);
    EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE refs <> 1"), 4);
    store->stop();
  }
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->restore(0));
  store->start();
  // c acknowledges 1..10 (a run), the odd ids 21..83 (32 scattered ids: one chunk), 60, 99.
  std::vector<broker::PersistOp> removes;
  for (int i = 1; i <= 10; ++i) removes.push_back(broker::OpQueueRemove{"c", uint64_t(i)});
  for (int i = 21; i <= 83; i += 2) removes.push_back(broker::OpQueueRemove{"c", uint64_t(i)});
  removes.push_back(broker::OpQueueRemove{"c", 60});
  removes.push_back(broker::OpQueueRemove{"c", 99});
  uint64_t last = store->submit_batch(std::move(removes));
  ASSERT_TRUE(durable_by(*store, last));
  for (int id : {5, 41, 60, 99}) {
    EXPECT_EQ(
        count_rows(dir.db_path(), "SELECT refs FROM messages WHERE id = " + std::to_string(id)), 1)
        << "message " << id << " is still referenced once";
  }
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 100 - 10 - 32 - 2 + 4);
  EXPECT_EQ(store->stats().stored_messages, uint64_t(100 - 10 - 32 - 2 + 4));
  // The last references go: d's entries and the retained message.
  last = store->submit_batch({broker::OpQueueRemove{"d", 1}, broker::OpQueueRemove{"d", 2},
                              broker::OpQueueRemove{"d", 3}, broker::OpRetainedClear{"t"}});
  ASSERT_TRUE(durable_by(*store, last));
  for (int id : {5, 41, 60, 99}) {
    EXPECT_EQ(
        count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE id = " + std::to_string(id)),
        0)
        << "message " << id;
  }
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 100 - 10 - 32 - 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE refs <> 1"), 0);
  store->stop();
}

// An entry removed and then added again under the same key in one batch ends up stored.
TEST(StoreWriter, EntryAddedAfterItsRemovalInOneBatchStays) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  uint64_t last =
      store->submit_batch({session("c"), queue_add("c", 1, make_message(1, "t", "old"))});
  ASSERT_TRUE(durable_by(*store, last));
  last = store->submit_batch(
      {broker::OpQueueRemove{"c", 1}, queue_add("c", 1, make_message(2, "t", "new"))});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT message_id FROM queue WHERE client_id = 'c'"), 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1) << "message 1 kept";
  store->stop();
}

TEST(StoreWriter, DiskCacheSizeBoundsStoredMessages) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.disk_cache_size = 3;
  LogCapture logs;
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  store->set_log(logs.sink());
  ASSERT_TRUE(store->restore(0));
  store->start();
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("c"));
  for (int i = 1; i <= 3; ++i) {
    ops.push_back(queue_add("c", i, make_message(i, "t", "p")));
  }
  uint64_t last = store->submit_batch(std::move(ops));
  // Full as soon as the adds are queued, before they are committed.
  EXPECT_TRUE(store->full());
  EXPECT_TRUE(store->degraded());
  EXPECT_FALSE(store->commit_failing());
  ASSERT_TRUE(durable_by(*store, last));
  store->count_refusal();
  store->count_refusal();
  Stats s = store->stats();
  EXPECT_EQ(s.refusals, 2u);
  EXPECT_TRUE(s.full);
  EXPECT_EQ(s.stored_messages, 3u);
  EXPECT_EQ(logs.count(kLogWarn), 1u) << "full is logged once";
  // Receivers acknowledge: room again.
  last = store->submit_batch({broker::OpQueueRemove{"c", 1}, broker::OpQueueRemove{"c", 2}});
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_FALSE(store->full());
  EXPECT_FALSE(store->degraded());
  EXPECT_EQ(store->stats().stored_messages, 1u);
  store->stop();
}

TEST(StoreWriter, DiskCacheBytesBoundsThePagesInUse) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.disk_cache_bytes = 256 * 1024;
  LogCapture logs;
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  store->set_log(logs.sink());
  ASSERT_TRUE(store->restore(0));
  store->start();
  EXPECT_FALSE(store->full());
  std::vector<broker::PersistOp> ops{session("c")};
  const std::string payload(1000, 'x');
  for (int i = 1; i <= 400; ++i) ops.push_back(queue_add("c", i, make_message(i, "t", payload)));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(ops))));
  // Checked after the commit: ~400 KiB of rows are past the bound.
  EXPECT_TRUE(store->full());
  EXPECT_TRUE(store->degraded());
  EXPECT_GE(store->stats().used_bytes, 256u * 1024);
  EXPECT_EQ(logs.count(kLogWarn), 1u);
  EXPECT_EQ(logs.count_containing("sqlite.disk_cache_bytes"), 1u) << "the log names the key";
  std::vector<broker::PersistOp> removes;
  for (int i = 1; i <= 400; ++i)
    removes.push_back(broker::OpQueueRemove{"c", static_cast<uint64_t>(i)});
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(removes))));
  EXPECT_FALSE(store->full()) << "the pages are free again";
  EXPECT_LT(store->stats().used_bytes, 256u * 1024 / 10 * 9);
  store->stop();
}

TEST(StoreWriter, IdleWriterCheckpointsTheWal) {
  TempDir dir;
  StoreOptions options;
  options.idle_checkpoint = std::chrono::milliseconds(50);
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = store->submit(session("c"));
  ASSERT_TRUE(durable_by(*store, last));
  ASSERT_TRUE(wait_until([&] { return store->stats().checkpoints >= 1; }, std::chrono::seconds(5)));
  store->stop();
}

// Writes ~1 MB of messages with the idle checkpoint out of the way; pages reach the
// database file only through the checkpoint being tested.
uint64_t write_megabyte(Store& store) {
  uint64_t last = store.submit(session("c"));
  for (int i = 1; i <= 250; i += 10) {
    std::vector<broker::PersistOp> ops;
    for (int k = i; k < i + 10; ++k)
      ops.push_back(queue_add("c", k, make_message(k, "t", std::string(4000, 'p'))));
    last = store.submit_batch(std::move(ops));
  }
  return last;
}

TEST(StoreWriter, CheckpointerCopiesTheWalPastItsThreshold) {
  TempDir dir;
  StoreOptions options;
  options.idle_checkpoint = std::chrono::hours(1);
  options.checkpoint_frames = 50;
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = write_megabyte(*store);
  ASSERT_TRUE(durable_by(*store, last));
  EXPECT_TRUE(wait_until([&] { return store->usage().db_bytes > 512 * 1024; }))
      << "db " << store->usage().db_bytes << " B, WAL " << store->usage().wal_bytes << " B";
  EXPECT_TRUE(wait_until([&] { return store->stats().checkpoints >= 1; }));
  store->stop();
}

TEST(StoreWriter, WriterCheckpointsWhenTheWalOutgrowsTheCheckpointer) {
  TempDir dir;
  StoreOptions options;
  options.idle_checkpoint = std::chrono::hours(1);
  options.checkpoint_frames = 1 << 30;  // the checkpointer is never asked
  options.writer_checkpoint_frames = 50;
  auto store = open_store(settings_for(dir), options);
  ASSERT_TRUE(store);
  store->start();
  uint64_t last = write_megabyte(*store);
  ASSERT_TRUE(durable_by(*store, last));
  // The writer's checkpoint runs right after the commit that crossed the limit.
  EXPECT_GT(store->usage().db_bytes, 512u * 1024)
      << "db " << store->usage().db_bytes << " B, WAL " << store->usage().wal_bytes << " B";
  EXPECT_GE(store->stats().checkpoints, 1u);
  store->stop();
}

TEST(StoreWriter, NextMessageIdIsUniqueAcrossThreads) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  std::vector<std::vector<broker::MessageId>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) got[t].push_back(store->next_message_id());
    });
  }
  for (auto& th : threads) th.join();
  std::vector<broker::MessageId> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_GE(all.front(), 1u);
}

TEST(StoreWriter, AckPolicyDecidesWhetherAcknowledgementsWaitForTheCommit) {
  TempDir dir;
  auto settings = settings_for(dir);
  ASSERT_EQ(settings.ack_policy, AckPolicy::AfterCommit);
  {
    auto store = open_store(settings);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->ack_after_commit());
  }
  settings.ack_policy = AckPolicy::Immediate;
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->ack_after_commit());
}

}  // namespace
}  // namespace harbor::store::test

namespace harbor::store::test {
namespace {

// A deferred QoS 1 state that falls due is not written when its removal is already held by
// the writer (one op per transaction and no deferral age here, so entry 1's state is due in
// the very next transaction, while its removal waits two transactions behind); QoS 2
// states, and QoS 1 states without a removal behind them, are written.
TEST(StoreWriter, HeldRemovalElidesTheQos1StateBeforeIt) {
  TempDir dir;
  auto settings = settings_for(dir);
  settings.commit_batch = 1;
  StoreOptions options;
  options.deferred_max_age = std::chrono::milliseconds(0);
  options.deferred_wait = std::chrono::hours(1);  // due states only, never the idle write
  auto store = open_store(settings, options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->restore(0));
  store->start();
  ASSERT_TRUE(durable_by(*store, store->submit_batch(session_with_entries("c", 3))));
  const uint64_t before = store->stats().elided_ops;
  ASSERT_TRUE(
      durable_by(*store, store->submit_batch({
                             broker::OpQueueUpdate{"c", 1, broker::OutState::AwaitPuback, 7},
                             broker::OpQueueUpdate{"c", 2, broker::OutState::AwaitPubrec, 8},
                             broker::OpQueueUpdate{"c", 3, broker::OutState::AwaitPuback, 9},
                             broker::OpQueueRemove{"c", 1},
                             broker::OpQueueRemove{"c", 2},
                         })));
  EXPECT_EQ(store->stats().elided_ops - before, 1u) << "only entry 1's QoS 1 state";
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 1);
  EXPECT_EQ(count_rows(dir.db_path(),
                       "SELECT count(*) FROM queue WHERE seq = 3 AND state = 1 AND packet_id = 9"),
            1)
      << "a state with no removal behind it is written when due";
  store->stop();
}

// Ids above the highest one at open take a plain INSERT; a row that is there after all (here
// written by hand behind the store's back) falls back to the checked insert, which counts
// the reference on the stored row instead of failing the batch.
TEST(StoreWriter, FreshIdThatExistsFallsBackToTheCheckedInsert) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->restore(0));
  store->start();
  {
    auto raw = Db::open(dir.db_path(), "");
    ASSERT_TRUE(raw);
    sqlite3_busy_timeout(raw->handle(), 5000);
    ASSERT_EQ(
        raw->exec("INSERT INTO messages(id, topic, payload, qos, retain, props, expires_at_ms, "
                  "received_at_ms, refs) VALUES (500, 't', x'68', 1, 0, x'', 0, 0, 0)"),
        SQLITE_OK);
  }
  ASSERT_TRUE(durable_by(
      *store, store->submit_batch({session("c"), queue_add("c", 1, make_message(500, "t", "x")),
                                   queue_add("c", 2, make_message(501, "t", "y"))})));
  EXPECT_EQ(store->stats().failed_commits, 0u);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT refs FROM messages WHERE id = 500"), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages WHERE id = 501 AND refs = 1"),
            1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 2);
  store->stop();
}

}  // namespace
}  // namespace harbor::store::test
