"""Deep topics (issue 10): a topic's level count must not multiply its memory, and
mqtt.max_topic_levels (ours, default 128) refuses what is deeper.

Memory is read from /proc/PID/status of the broker. Before the fix a retained message on a
65,535-level topic cost ~15 MB of tree nodes and a subscription ~19 MB; now both cost
about their text (~65 KB each), so the bounds below are generous and still far from that.
"""

import pytest

import mqttraw as m
from helpers import wait_for

pytestmark = pytest.mark.harbormq_only

LEVELS = 65000
# Both deep items together (retained message + subscription + their deliveries) may raise
# RSS by this much; before the fix they took ~34 MB.
DEEP_BOUND_KIB = 4 * 1024


def empty_levels(n, first=""):
    """A topic of n levels: `first`, then n - 1 empty ones (the most levels per byte)."""
    return first + "/" * (n - 1)


def levels(n, word="l"):
    return "/".join([word] * n)


def warm_up(broker, open_client):
    """Exercise the publish/subscribe/retained paths once so their first allocations are
    not counted against the deep topics."""
    c = open_client(broker, 4)
    c.subscribe([("warm/+/x", 1)])
    c.publish("warm/a/x", b"w" * 1000, qos=1, retain=True)
    c.publishes(1)
    c.publish("warm/a/x", b"", qos=1, retain=True)
    c.publishes(1)


def test_deep_retained_and_subscription_cost_their_text(make_broker, open_client):
    b = make_broker(max_topic_levels=65535)
    warm_up(b, open_client)
    before_rss = b.status_kib("VmRSS")
    before_hwm = b.status_kib("VmHWM")

    topic = empty_levels(LEVELS, "r")
    pub = open_client(b, 4)
    ack = pub.publish(topic, b"deep", qos=1, retain=True)
    assert ack.type == m.PUBACK

    sub = open_client(b, 4)
    deep_filter = empty_levels(LEVELS, "s")
    assert sub.subscribe([(deep_filter, 1)]) == [1]
    # The subscription is in the tree: a publish on that (65,000-level) topic arrives.
    pub.publish(deep_filter, b"to-sub", qos=1)
    got = sub.publishes(1)[0]
    assert (got.topic, got.payload) == (deep_filter, b"to-sub")
    # The retained message is in the retained tree: a subscription to it gets it.
    assert sub.subscribe([(topic, 1)]) == [1]
    got = sub.publishes(1)[0]
    assert (got.topic, got.payload, got.retain) == (topic, b"deep", True)
    sub.no_publish(0.2)

    grew = b.status_kib("VmRSS") - before_rss
    peak = b.status_kib("VmHWM") - before_hwm
    assert grew < DEEP_BOUND_KIB, "VmRSS grew by %d KiB for two deep topics" % grew
    assert peak < DEEP_BOUND_KIB, "VmHWM grew by %d KiB for two deep topics" % peak


def test_many_deep_retained_messages_survive_a_restart_cheaply(make_broker, open_client):
    """Retained messages on deep topics were accepted and acknowledged, so a restart keeps
    them, also when the restarted broker has a lower max_topic_levels; restoring them costs
    their text, not ~15 MB each."""
    count = 20
    b = make_broker(max_topic_levels=65535, persistence=True)
    pub = open_client(b, 4)
    topics = [empty_levels(LEVELS, "p%d" % i) for i in range(count)]
    for i, t in enumerate(topics):
        assert pub.publish(t, b"kept%d" % i, qos=1, retain=True).type == m.PUBACK
    pub.disconnect()

    b.mqtt["max_topic_levels"] = 128
    b.write_config()
    b.restart()
    hwm = b.status_kib("VmHWM")
    sub = open_client(b, 4)
    assert sub.subscribe([("#", 1)]) == [1]
    got = sub.publishes(count, timeout=20)
    assert sorted(p.topic for p in got) == sorted(topics)
    # 20 topics of 65 KB restored: store rows, tree text and messages. Before the fix the
    # tree alone took 20 x 15 MB.
    assert hwm < 64 * 1024, "restarted broker peaked at %d KiB" % hwm


@pytest.mark.parametrize("version", [4, 5])
def test_publish_deeper_than_the_limit_closes(make_broker, open_client, version):
    """mqtt.max_topic_levels = 128 (default): a 128-level PUBLISH is delivered, a 129-level
    one closes the connection (5.0: DISCONNECT 0x90 Topic Name invalid first)."""
    b = make_broker()
    sub = open_client(b, version)
    assert sub.subscribe([("#", 1)]) == [1]
    pub = open_client(b, version)
    ok_topic = levels(128)
    pub.publish(ok_topic, b"fits", qos=1)
    got = sub.publishes(1)[0]
    assert (got.topic, got.payload) == (ok_topic, b"fits")

    pub.send(m.publish_packet(levels(129), b"too deep", 1, False, False, pub.next_pid(),
                              version))
    before_close = pub.wait_closed()
    if version == 5:
        disconnects = [p for p in before_close if p.type == m.DISCONNECT]
        assert [p.reason for p in disconnects] == [0x90], before_close
    assert not [p for p in before_close if p.type == m.PUBACK], before_close
    sub.no_publish(0.3)
    sub.ping()


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_filter_deeper_than_the_limit_is_refused(make_broker, open_client, version):
    """A 129-level filter gets the failure code (3.1.1: 0x80; 5.0: 0x8F Topic Filter
    invalid) while the connection and the other filters of the packet stay."""
    b = make_broker()
    c = open_client(b, version)
    deep = levels(127, "f") + "/+/#"  # 129 levels, wildcards count as levels
    ok = levels(127, "g") + "/+"      # 128 levels
    failure = 0x80 if version == 4 else 0x8F
    assert c.subscribe([(deep, 1), (ok, 1)]) == [failure, 1]
    c.ping()
    pub = open_client(b, version)
    pub.publish(levels(127, "g") + "/x", b"to ok", qos=1)
    got = c.publishes(1)[0]
    assert got.payload == b"to ok"
    # 128 levels: within the limit, and matched by the refused filter ('#' covers its parent).
    pub.publish(levels(127, "f") + "/x", b"to deep", qos=1)
    c.no_publish(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_will_topic_deeper_than_the_limit_is_refused(make_broker, open_client, version):
    """A CONNECT whose will topic has more than max_topic_levels levels is refused with a
    CONNACK failure (or closed), never accepted."""
    b = make_broker()
    c = open_client(b, version, connect=False)
    c.send(m.connect_packet("deep-will", version, True, 60, None,
                            {"topic": levels(129), "payload": b"w", "qos": 0,
                             "retain": False}))
    try:
        ack = c.wait_for(m.CONNACK)
        assert ack.reason != 0, "deep will topic accepted"
    except m.Closed:
        pass
    ok = open_client(b, version, connect=False)
    ok.send(m.connect_packet("fine-will", version, True, 60, None,
                             {"topic": levels(128), "payload": b"w", "qos": 0,
                              "retain": False}))
    assert ok.wait_for(m.CONNACK).reason == 0
    wait_for(lambda: b.running(), what="broker still running")
