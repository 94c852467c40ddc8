// What the writer stores comes back from restore(): every op kind, shared messages loaded
// once, message rows deleted with their last reference, expiry applied at restore.
#include "store_test_util.hpp"

namespace harbor::store::test {
namespace {

using broker::OutState;

constexpr int64_t kNow = 1'700'000'100'000;

// Submits `ops`, waits until they are durable, stops the store.
void store_all(Store& store, std::vector<broker::PersistOp> ops) {
  store.start();
  uint64_t last = store.submit_batch(std::move(ops));
  ASSERT_TRUE(durable_by(store, last));
  store.stop();
}

TEST(StoreRestore, RoundTripOfEveryOpKind) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto shared = make_message(7, "a/b", std::string("pay\0load", 8));
  {
    auto m = std::make_shared<broker::Message>(*shared);
    m->forward_props = std::string("\x01\x01\x26\x00\x01k\x00\x01v", 10);
    m->qos = 2;
    m->retain = true;
    m->expires_at_ms = kNow + 60'000;
    shared = m;
  }
  auto retained_only = make_message(9, "r/t", "");
  auto store = open_store(settings);
  ASSERT_TRUE(store);

  std::vector<broker::PersistOp> ops;
  auto s1 = session("c1", 3600, kNow - 1000);
  s1.version = 4;
  broker::StoredWill will;
  will.topic = "will/c1";
  will.payload = std::string("bye\0", 4);
  will.qos = 2;
  will.retain = true;
  will.props = "\x01\x01";
  will.delay_s = 30;
  will.expiry_s = 120;
  s1.will = std::make_shared<const broker::StoredWill>(will);
  ops.push_back(s1);
  ops.push_back(session("c2"));
  broker::OpSubscriptionAdd sub;
  sub.client_id = "c1";
  sub.filter = "$share/g/a/+";
  sub.qos = 2;
  sub.no_local = true;
  sub.retain_as_published = true;
  sub.retain_handling = 2;
  sub.subscription_id = 268'435'455;
  ops.push_back(sub);
  broker::OpSubscriptionAdd sub2{"c1", "x/#", 0, false, false, 0, 0};
  ops.push_back(sub2);
  ops.push_back(broker::OpSubscriptionAdd{"c1", "gone", 1, false, false, 0, 0});
  ops.push_back(broker::OpSubscriptionRemove{"c1", "gone"});
  auto q1 = queue_add("c1", 1, shared);
  q1.qos = 2;
  q1.retain = true;
  q1.subscription_ids = {1, 268'435'455};
  ops.push_back(q1);
  ops.push_back(broker::OpQueueShared{"c1", 1, "$share/g/a/+"});  // same batch as its add
  ops.push_back(queue_add("c1", 2, shared));
  ops.push_back(queue_add("c2", 5, shared));
  ops.push_back(broker::OpQueueUpdate{"c1", 1, OutState::AwaitPubcomp, 65535});
  ops.push_back(broker::OpQueueUpdate{"c2", 5, OutState::AwaitPuback, 12});
  ops.push_back(broker::OpQos2InAdd{"c1", 3});
  ops.push_back(broker::OpQos2InAdd{"c1", 1});
  ops.push_back(broker::OpQos2InAdd{"c1", 2});
  ops.push_back(broker::OpQos2InRemove{"c1", 2});
  ops.push_back(broker::OpRetainedSet{shared});
  ops.push_back(broker::OpRetainedSet{retained_only});
  store_all(*store, std::move(ops));
  store.reset();

  store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(kNow);
  ASSERT_TRUE(state) << state.error();
  EXPECT_EQ(store->next_message_id(), 10u);
  ASSERT_EQ(state->sessions.size(), 2u);

  const auto& r1 = state->sessions[0];
  EXPECT_EQ(r1.session.client_id, "c1");
  EXPECT_EQ(r1.session.version, 4);
  EXPECT_EQ(r1.session.expiry_s, 3600u);
  EXPECT_EQ(r1.session.last_seen_ms, kNow - 1000);
  ASSERT_TRUE(r1.session.will);
  EXPECT_EQ(r1.session.will->topic, "will/c1");
  EXPECT_EQ(r1.session.will->payload, std::string("bye\0", 4));
  EXPECT_EQ(r1.session.will->qos, 2);
  EXPECT_TRUE(r1.session.will->retain);
  EXPECT_EQ(r1.session.will->props, "\x01\x01");
  EXPECT_EQ(r1.session.will->delay_s, 30u);
  EXPECT_EQ(r1.session.will->expiry_s, 120u);

  ASSERT_EQ(r1.subscriptions.size(), 2u);
  const auto& rs = r1.subscriptions[0];
  EXPECT_EQ(rs.client_id, "c1");
  EXPECT_EQ(rs.filter, "$share/g/a/+");
  EXPECT_EQ(rs.qos, 2);
  EXPECT_TRUE(rs.no_local);
  EXPECT_TRUE(rs.retain_as_published);
  EXPECT_EQ(rs.retain_handling, 2);
  EXPECT_EQ(rs.subscription_id, 268'435'455u);
  EXPECT_EQ(r1.subscriptions[1].filter, "x/#");
  EXPECT_FALSE(r1.subscriptions[1].no_local);

  ASSERT_EQ(r1.queue.size(), 2u);
  EXPECT_EQ(r1.queue[0].seq, 1u);
  EXPECT_EQ(r1.queue[0].qos, 2);
  EXPECT_TRUE(r1.queue[0].retain);
  EXPECT_EQ(r1.queue[0].subscription_ids, (std::vector<uint32_t>{1, 268'435'455}));
  EXPECT_EQ(r1.queue[0].state, OutState::AwaitPubcomp);
  EXPECT_EQ(r1.queue[0].packet_id, 65535);
  EXPECT_EQ(r1.queue[0].shared_filter, "$share/g/a/+");
  EXPECT_EQ(r1.queue[1].seq, 2u);
  EXPECT_EQ(r1.queue[1].state, OutState::Queued);
  EXPECT_EQ(r1.queue[1].packet_id, 0);
  EXPECT_TRUE(r1.queue[1].subscription_ids.empty());
  EXPECT_EQ(r1.queue[1].shared_filter, "");  // stored as NULL
  EXPECT_EQ(r1.qos2_in, (std::vector<uint16_t>{1, 3}));

  const auto& m = *r1.queue[0].message;
  EXPECT_EQ(m.store_id, 7u);
  EXPECT_EQ(m.topic, "a/b");
  EXPECT_EQ(m.payload, std::string("pay\0load", 8));
  EXPECT_EQ(m.qos, 2);
  EXPECT_TRUE(m.retain);
  EXPECT_EQ(m.forward_props, shared->forward_props);
  EXPECT_EQ(m.expires_at_ms, kNow + 60'000);
  EXPECT_EQ(m.received_at_ms, shared->received_at_ms);

  const auto& r2 = state->sessions[1];
  EXPECT_EQ(r2.session.client_id, "c2");
  EXPECT_FALSE(r2.session.will);
  ASSERT_EQ(r2.queue.size(), 1u);
  EXPECT_EQ(r2.queue[0].state, OutState::AwaitPuback);
  EXPECT_EQ(r2.queue[0].packet_id, 12);

  // One message object, shared by every entry and the retained list.
  EXPECT_EQ(r1.queue[0].message.get(), r1.queue[1].message.get());
  EXPECT_EQ(r1.queue[0].message.get(), r2.queue[0].message.get());
  ASSERT_EQ(state->retained.size(), 2u);
  EXPECT_EQ(state->retained[0]->topic, "a/b");
  EXPECT_EQ(state->retained[0].get(), r1.queue[0].message.get());
  EXPECT_EQ(state->retained[1]->topic, "r/t");
  EXPECT_EQ(state->retained[1]->payload, "");
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 2);
}

// OpQueueShared for a row an earlier batch wrote updates it; for a row that is gone it
// changes nothing.
TEST(StoreRestore, SharedFilterOfARowFromAnEarlierBatch) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto m = make_message(3, "q/t", "x");
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  store->start();
  ASSERT_TRUE(durable_by(*store, store->submit_batch({session("c1"), queue_add("c1", 1, m),
                                                       queue_add("c1", 2, m)})));
  ASSERT_TRUE(durable_by(*store, store->submit_batch({broker::OpQueueShared{"c1", 2, "$queue/q/t"},
                                                       broker::OpQueueShared{"c1", 9, "$queue/q/t"}})));
  store->stop();
  store = open_store(settings);
  ASSERT_TRUE(store);
  auto state = store->restore(kNow);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  const auto& q = state->sessions[0].queue;
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].shared_filter, "");
  EXPECT_EQ(q[1].shared_filter, "$queue/q/t");
}

TEST(StoreRestore, MessageRowDeletedWithLastQueueReference) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  auto count = [&] { return count_rows(dir.db_path(), "SELECT count(*) FROM messages"); };
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("c1"));
  ops.push_back(session("c2"));
  auto one = make_message(1, "t", "one");
  ops.push_back(queue_add("c1", 1, one));
  ops.push_back(queue_add("c2", 1, one));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(ops))));
  EXPECT_EQ(count(), 1);
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpQueueRemove{"c1", 1})));
  EXPECT_EQ(count(), 1);
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpQueueRemove{"c2", 1})));
  EXPECT_EQ(count(), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 0);
  // Removing something that is not there is harmless.
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpQueueRemove{"c2", 1})));
  EXPECT_EQ(store->stats().failed_ops, 0u);
  store->stop();
}

TEST(StoreRestore, MessageRowDeletedWithLastRetainedReference) {
  TempDir dir;
  auto store = open_store(settings_for(dir));
  ASSERT_TRUE(store);
  store->start();
  auto count = [&] { return count_rows(dir.db_path(), "SELECT count(*) FROM messages"); };
  auto m2 = make_message(2, "r", "v2");
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpRetainedSet{m2})));
  EXPECT_EQ(count(), 1);
  // Replacing the retained message drops the old body.
  auto m3 = make_message(3, "r", "v3");
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpRetainedSet{m3})));
  EXPECT_EQ(count(), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT id FROM messages"), 3);
  // A body referenced by both a queue entry and the retained row survives either going.
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("c1"));
  ops.push_back(queue_add("c1", 1, m3));
  ASSERT_TRUE(durable_by(*store, store->submit_batch(std::move(ops))));
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpRetainedClear{"r"})));
  EXPECT_EQ(count(), 1);
  ASSERT_TRUE(durable_by(*store, store->submit(broker::OpQueueRemove{"c1", 1})));
  EXPECT_EQ(count(), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM retained"), 0);
  store->stop();
}

TEST(StoreRestore, SessionDeleteRemovesEverythingOfTheSession) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("c1"));
  ops.push_back(session("c2"));
  ops.push_back(broker::OpSubscriptionAdd{"c1", "a", 1, false, false, 0, 0});
  auto m1 = make_message(1, "a", "1");
  auto m2 = make_message(2, "a", "2");
  ops.push_back(queue_add("c1", 1, m1));
  ops.push_back(queue_add("c1", 2, m2));
  ops.push_back(queue_add("c2", 1, m2));
  ops.push_back(broker::OpQos2InAdd{"c1", 9});
  ops.push_back(broker::OpSessionDelete{"c1"});
  store_all(*store, std::move(ops));
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT id FROM messages"), 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM subscriptions"), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM qos2_in"), 0);
  store = open_store(settings);
  auto state = store->restore(kNow);
  ASSERT_TRUE(state);
  ASSERT_EQ(state->sessions.size(), 1u);
  EXPECT_EQ(state->sessions[0].session.client_id, "c2");
}

TEST(StoreRestore, ExpiryDropsSessionsAndMessages) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  std::vector<broker::PersistOp> ops;
  ops.push_back(session("expired", 10, kNow - 20'000));
  ops.push_back(session("fresh", 10, kNow - 5'000));
  ops.push_back(session("never", 0xFFFFFFFF, 1));
  ops.push_back(session("zero", 0, kNow));
  ops.push_back(session("connected", 10, 0));
  ops.push_back(broker::OpSubscriptionAdd{"expired", "a", 1, false, false, 0, 0});
  ops.push_back(queue_add("expired", 1, make_message(1, "a", "only for expired")));
  ops.push_back(broker::OpQos2InAdd{"expired", 4});
  // Message 2 expired: dropped from the queue while Queued, kept once delivery started.
  auto old = make_message(2, "a", "old", kNow - 1);
  ops.push_back(queue_add("fresh", 1, old));
  ops.push_back(queue_add("never", 1, old));
  ops.push_back(broker::OpQueueUpdate{"never", 1, OutState::AwaitPuback, 5});
  ops.push_back(queue_add("fresh", 2, make_message(3, "a", "gone", kNow - 1)));
  ops.push_back(queue_add("fresh", 3, make_message(4, "a", "live", kNow + 1000)));
  ops.push_back(broker::OpRetainedSet{make_message(5, "ret/old", "x", kNow - 1)});
  ops.push_back(broker::OpRetainedSet{make_message(6, "ret/new", "y", kNow + 1)});
  store_all(*store, std::move(ops));

  store = open_store(settings);
  auto state = store->restore(kNow);
  ASSERT_TRUE(state) << state.error();
  std::vector<std::string> names;
  for (const auto& s : state->sessions) names.push_back(s.session.client_id);
  EXPECT_EQ(names, (std::vector<std::string>{"connected", "fresh", "never"}));
  const auto& fresh = state->sessions[1];
  ASSERT_EQ(fresh.queue.size(), 1u);
  EXPECT_EQ(fresh.queue[0].message->store_id, 4u);
  const auto& never = state->sessions[2];
  ASSERT_EQ(never.queue.size(), 1u);
  EXPECT_EQ(never.queue[0].message->store_id, 2u);
  EXPECT_EQ(never.queue[0].packet_id, 5);
  ASSERT_EQ(state->retained.size(), 1u);
  EXPECT_EQ(state->retained[0]->topic, "ret/new");
  // What was dropped is deleted from the file too.
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM sessions"), 3);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 3);  // 2, 4, 6
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM subscriptions"), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM qos2_in"), 0);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM queue"), 2);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM retained"), 1);
  EXPECT_EQ(store->stats().stored_messages, 3u);
}

TEST(StoreRestore, OrphanedMessageIsCollectedAtRestore) {
  TempDir dir;
  auto settings = settings_for(dir);
  auto store = open_store(settings);
  ASSERT_TRUE(store);
  store_all(*store, {session("c")});
  // A body nobody refers to (left by an older build, or written by hand).
  {
    auto db = Db::open(dir.db_path(), "");
    ASSERT_TRUE(db);
    ASSERT_EQ(db->exec("INSERT INTO messages(id, topic, payload, qos, retain, props, "
                       "expires_at_ms, received_at_ms) VALUES (41, 't', x'70', 1, 0, x'', 0, 0)"),
              SQLITE_OK);
  }
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 1);
  store = open_store(settings);
  auto state = store->restore(kNow);
  ASSERT_TRUE(state);
  EXPECT_EQ(count_rows(dir.db_path(), "SELECT count(*) FROM messages"), 0);
  // Ids are never handed out twice within a run, and restart after the highest kept id.
  EXPECT_GE(store->next_message_id(), 1u);
}

}  // namespace
}  // namespace harbor::store::test
