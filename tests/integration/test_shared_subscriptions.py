"""Shared subscriptions (MQTT 5.0 4.8.2, also offered to 3.1.1 clients): each selection
strategy of mqtt.shared_subscription_strategy, $queue/{filter}, redelivery to another member
when a member's session ends with messages unacknowledged, no retained messages on a shared
subscribe. Members are paho clients (3.1.1 and 5.0); the member that must not acknowledge
is a raw client. Every wait is a condition with a deadline."""
import re
import threading

import pytest

import mqttraw as m
from helpers import both_versions, unique_id, wait_for

pytestmark = pytest.mark.harbormq_only  # the strategy key is ours

N = 40


def shared_broker(make_broker, strategy):
    return make_broker(shared_subscription_strategy=strategy)


def members(paho_client, broker, version, n, filt, qos=1):
    clients = [paho_client(broker, version) for _ in range(n)]
    for c in clients:
        assert c.subscribe(filt, qos) == [qos]
    return clients


def received(clients, n, timeout=10.0):
    """Waits until the clients got n messages in total; then each one's payloads."""
    wait_for(lambda: sum(len(c.messages) for c in clients) >= n, timeout,
             what="%d messages over the group" % n)
    return [[msg.payload for msg in c.messages] for c in clients]


def settle(clients, publisher, marker_topic):
    """Every member also holds a plain subscription to marker_topic; one marker published
    after the batch reaches each of them behind the batch (one publisher, in order), so
    after it nothing of the batch can still arrive."""
    before = [len(c.messages) for c in clients]
    publisher.publish(marker_topic, b"marker", qos=1)
    wait_for(lambda: all(any(msg.topic == marker_topic for msg in c.messages[b:])
                         for c, b in zip(clients, before)), 10.0, what="marker on every member")
    for c in clients:
        with c.lock:
            c.messages = [msg for msg in c.messages if msg.topic != marker_topic]


def wait_gone(broker, client):
    """The broker logged the client's disconnect; its session (clean) ended in the same
    step, so its subscriptions have left the tree."""
    pattern = r'client "%s" disconnected from ' % re.escape(client.client_id)
    wait_for(lambda: re.search(pattern, broker.log_text()), 10.0, what="disconnect logged")


def check_each_once(per_member, n):
    payloads = sorted(p for lst in per_member for p in lst)
    assert payloads == sorted(b"%d" % i for i in range(n)), "a message lost or duplicated"


def group_of(make_broker, paho_client, strategy, version, n_members=3, filt=None):
    broker = shared_broker(make_broker, strategy)
    tag = unique_id("g")
    topic_root = "ss/%s" % tag
    filt = filt or "$share/%s/%s/#" % (tag, topic_root)
    group = members(paho_client, broker, version, n_members, filt)
    marker = "marker/%s" % tag
    for c in group:
        c.subscribe(marker, 1)
    return broker, group, topic_root, marker


@both_versions
def test_round_robin_alternates(make_broker, paho_client, version):
    broker, group, root, marker = group_of(make_broker, paho_client, "round_robin", version, 2)
    pub = paho_client(broker, version)
    for i in range(N):
        pub.publish(root + "/t", b"%d" % i, qos=1)
    per = received(group, N)
    settle(group, pub, marker)
    per = [[msg.payload for msg in c.messages] for c in group]
    check_each_once(per, N)
    # One publisher (one shard): the members take turns, message by message.
    first = 0 if b"0" in per[0] else 1
    for i in range(N):
        assert (b"%d" % i) in per[(first + i) % 2], "message %d broke the alternation: %r" % (i, per)


@both_versions
def test_random_spreads_each_message_to_one_member(make_broker, paho_client, version):
    broker, group, root, marker = group_of(make_broker, paho_client, "random", version)
    pub = paho_client(broker, version)
    for i in range(N):
        pub.publish(root + "/t", b"%d" % i, qos=1)
    received(group, N)
    settle(group, pub, marker)
    per = [[msg.payload for msg in c.messages] for c in group]
    check_each_once(per, N)
    # All 40 on one of 3 members at random: 3 * (1/3)^40.
    assert sum(1 for lst in per if lst) > 1, "random used one member only: %r" % per


@both_versions
def test_sticky_stays_on_one_member_until_it_leaves(make_broker, paho_client, version):
    broker, group, root, marker = group_of(make_broker, paho_client, "sticky", version)
    pubs = [paho_client(broker, version) for _ in range(2)]
    for i in range(N):
        pubs[i % 2].publish(root + "/t%d" % (i % 5), b"%d" % i, qos=1)
    received(group, N)
    for p in pubs:
        settle(group, p, marker)
    per = [[msg.payload for msg in c.messages] for c in group]
    check_each_once(per, N)
    chosen = [i for i, lst in enumerate(per) if lst]
    assert len(chosen) == 1, "sticky used several members: %r" % [len(x) for x in per]
    # The chosen member leaves: another one is chosen, and kept.
    group[chosen[0]].close()
    wait_gone(broker, group[chosen[0]])
    rest = [c for i, c in enumerate(group) if i != chosen[0]]
    for c in rest:
        with c.lock:
            c.messages = []
    for i in range(N):
        pubs[0].publish(root + "/t", b"%d" % i, qos=1)
    received(rest, N)
    settle(rest, pubs[0], marker)
    per = [[msg.payload for msg in c.messages] for c in rest]
    check_each_once(per, N)
    assert sum(1 for lst in per if lst) == 1, "sticky used several members: %r" % per


@both_versions
def test_hash_clientid_keeps_each_publisher_on_one_member(make_broker, paho_client, version):
    broker, group, root, marker = group_of(make_broker, paho_client, "hash_clientid", version)
    pubs = [paho_client(broker, version) for _ in range(6)]
    per_pub = 8
    for k in range(per_pub):
        for j, p in enumerate(pubs):
            p.publish(root + "/t%d" % k, b"%d" % (j * per_pub + k), qos=1)
    received(group, per_pub * len(pubs))
    for p in pubs:
        settle(group, p, marker)
    per = [[msg.payload for msg in c.messages] for c in group]
    check_each_once(per, per_pub * len(pubs))
    for j in range(len(pubs)):
        mine = {b"%d" % (j * per_pub + k) for k in range(per_pub)}
        holders = [i for i, lst in enumerate(per) if mine & set(lst)]
        assert len(holders) == 1, "publisher %d spread over members %r" % (j, holders)


@both_versions
def test_hash_topic_keeps_each_topic_on_one_member(make_broker, paho_client, version):
    broker, group, root, marker = group_of(make_broker, paho_client, "hash_topic", version)
    pubs = [paho_client(broker, version) for _ in range(2)]
    topics = 8
    for i in range(N):
        pubs[i % 2].publish(root + "/t%d" % (i % topics), b"%d" % i, qos=1)
    received(group, N)
    for p in pubs:
        settle(group, p, marker)
    by_topic = {}
    for idx, c in enumerate(group):
        for msg in c.messages:
            by_topic.setdefault(msg.topic, set()).add(idx)
    check_each_once([[msg.payload for msg in c.messages] for c in group], N)
    assert len(by_topic) == topics
    for topic, holders in by_topic.items():
        assert len(holders) == 1, "topic %s went to members %r" % (topic, holders)


@both_versions
def test_queue_prefix_is_one_shared_group(make_broker, paho_client, version):
    """$queue/{filter}: every $queue subscriber of the filter is in one group; the filter
    without the prefix is what matches; UNSUBSCRIBE with the same string leaves the group."""
    broker = shared_broker(make_broker, "round_robin")
    tag = unique_id("q")
    root = "qq/%s" % tag
    group = members(paho_client, broker, version, 2, "$queue/%s/+" % root)
    marker = "marker/%s" % tag
    for c in group:
        c.subscribe(marker, 1)
    pub = paho_client(broker, version)
    for i in range(N):
        pub.publish(root + "/x", b"%d" % i, qos=1)
    received(group, N)
    settle(group, pub, marker)
    per = [[msg.payload for msg in c.messages] for c in group]
    check_each_once(per, N)
    assert all(len(lst) == N // 2 for lst in per), [len(x) for x in per]
    assert all(msg.topic == root + "/x" for c in group for msg in c.messages)
    # The first member leaves the queue: the other gets everything.
    unsubscribed = threading.Event()
    group[0].c.on_unsubscribe = lambda *args: unsubscribed.set()
    rc, _ = group[0].c.unsubscribe("$queue/%s/+" % root)
    assert rc == 0
    assert unsubscribed.wait(5.0), "no UNSUBACK"
    for c in group:
        with c.lock:
            c.messages = []
    for i in range(10):
        pub.publish(root + "/x", b"%d" % i, qos=1)
    received([group[1]], 10)
    settle(group, pub, marker)
    assert group[0].messages == []
    assert sorted(msg.payload for msg in group[1].messages) == sorted(b"%d" % i for i in range(10))


@both_versions
def test_unacknowledged_messages_go_to_another_member_when_one_disconnects(
        make_broker, paho_client, version):
    """MQTT 5 4.8.2: QoS 1 messages sent to a member that never acknowledged them, and those
    still queued for it, go to another member once its (non-persistent) session ends."""
    broker = make_broker(shared_subscription_strategy="round_robin", max_inflight_window=4)
    tag = unique_id("r")
    filt = "$share/%s/rd/%s" % (tag, tag)
    stuck = m.RawClient(broker.host, broker.port, version)
    try:
        stuck.auto_ack = False
        # The window is max_inflight_window (5.0: no Receive Maximum sent, so the same).
        assert stuck.connect(unique_id("stuck")).reason == 0
        assert stuck.subscribe([(filt, 1)]) == [1]
        pub = paho_client(broker, version)
        for i in range(12):
            pub.publish("rd/%s" % tag, b"%d" % i, qos=1)
        got = stuck.publishes(4, 10.0)  # the window's worth, never acknowledged
        assert [p.payload for p in got] == [b"0", b"1", b"2", b"3"]
        other = paho_client(broker, version)
        assert other.subscribe(filt, 1) == [1]
        stuck.close()  # no DISCONNECT: the clean session ends with the connection
        msgs = other.expect(12, 10.0)
        assert sorted(int(msg.payload) for msg in msgs) == list(range(12))
    finally:
        stuck.close()


@both_versions
def test_no_retained_message_on_shared_subscribe(make_broker, paho_client, version):
    """Retained messages are sent for non-shared subscriptions only (MQTT 5 3.3.1.3, 3.8.4),
    whatever Retain Handling says; $queue alike; a plain subscriber gets it."""
    broker = shared_broker(make_broker, "round_robin")
    tag = unique_id("rt")
    topic = "rt/%s" % tag
    pub = paho_client(broker, version)
    pub.publish(topic, b"kept", qos=1, retain=True)
    plain = paho_client(broker, version)
    plain.subscribe(topic, 1)
    assert plain.expect(1, 5.0)[0].retain
    shared = paho_client(broker, version)
    if version == 5:
        for handling in (0, 1, 2):
            shared.subscribe("$share/%s%d/%s" % (tag, handling, topic), 1,
                             retainHandling=handling)
    else:
        shared.subscribe("$share/%s/%s" % (tag, topic), 1)
    shared.subscribe("$queue/%s" % topic, 1)
    marker = "marker/%s" % tag
    shared.subscribe(marker, 1)
    pub.publish(marker, b"m", qos=1)
    wait_for(lambda: any(msg.topic == marker for msg in shared.messages), 5.0, what="marker")
    assert [msg.topic for msg in shared.messages] == [marker], "retained sent on a shared subscribe"


@both_versions
def test_queued_shared_messages_still_go_to_another_member_after_a_restart(
        persist_broker, open_client, version):
    """The store keeps the shared subscription each queued message came through
    (queue.shared_filter), so after kill -9 and a restart, what a group gave an offline
    persistent member still goes to another member when that member's session ends."""
    broker = persist_broker(shared_subscription_strategy="round_robin")
    tag = unique_id("rs")
    filt = "$share/%s/rs/%s" % (tag, tag)
    persistent = {"clean": False}
    if version == 5:
        persistent["props"] = {m.P_SESSION_EXPIRY: 600}
    ids = {name: unique_id(name) for name in ("a", "b")}
    for cid in ids.values():
        c = open_client(broker, version, client_id=cid, **persistent)
        assert c.subscribe([(filt, 1)]) == [1]
        c.disconnect_and_wait()
    pub = open_client(broker, version)
    for i in range(10):
        pub.publish("rs/%s" % tag, b"%d" % i, qos=1)  # acknowledged: stored for a or b
    pub.disconnect_and_wait()
    broker.kill9()
    broker.start()
    b = open_client(broker, version, client_id=ids["b"], **persistent)
    assert b.connack.session_present is True
    got = [p.payload for p in b.publishes(5, 10.0)]  # round robin gave b half
    # a comes back with a clean start: its session ends, and what it was given goes to b.
    a = open_client(broker, version, client_id=ids["a"], clean=True)
    assert a.connack.session_present is False
    got += [p.payload for p in b.publishes(5, 10.0)]
    b.no_publish(0.5)
    assert sorted(got, key=int) == [b"%d" % i for i in range(10)]
