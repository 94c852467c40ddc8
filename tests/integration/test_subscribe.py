"""SUBSCRIBE / UNSUBSCRIBE: wildcard matching, invalid filters, overlapping subscriptions,
MQTT 5 subscription options, subscription identifiers, shared subscriptions."""

import time

import pytest

import mqttraw as m
from helpers import both_versions, is_mosquitto, unique_id

MARKER = "zz/marker"


def until_marker(client, timeout=5.0, marker=MARKER):
    """All PUBLISH packets received before the marker message (which ends the batch)."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "marker not received; got %r" % got
        p = client.publishes(1, left)[0]
        if p.topic == marker:
            return got
        got.append(p)


def collect_from(clients, n, timeout=5.0):
    """Read PUBLISH packets from several clients until n arrived in total."""
    per = [[] for _ in clients]
    deadline = time.monotonic() + timeout
    while sum(len(x) for x in per) < n:
        assert time.monotonic() < deadline, "only %d/%d arrived: %r" % (
            sum(len(x) for x in per), n, [len(x) for x in per])
        for i, c in enumerate(clients):
            p = c.recv(0.02)
            if p is None:
                continue
            if p.type == m.PUBLISH:
                per[i].append(p)
    return per


MATCH_TABLE = [
    # filter, topics that match, topics that do not ([MQTT-4.7.1-*], 3.1.1 4.7.3 examples)
    ("sport/tennis/+", ["sport/tennis/player1", "sport/tennis/player2"],
     ["sport/tennis/player1/ranking", "sport/tennis", "sport/tennisx/p"]),
    ("sport/#", ["sport", "sport/tennis", "sport/tennis/player1/ranking", "sport/"],
     ["sports", "sportx/a"]),
    ("sport/+", ["sport/", "sport/a"], ["sport", "sport/a/b"]),
    ("+/+", ["/finance", "a/b"], ["a", "a/b/c"]),
    ("/+", ["/finance"], ["finance", "/a/b"]),
    ("+", ["a", "finance"], ["/finance", "a/b"]),
    ("a/+/c/#", ["a/b/c", "a/x/c/d/e"], ["a/b/d", "a/c"]),
    ("exact/topic", ["exact/topic"], ["exact/topic/", "Exact/topic", "exact/Topic"]),
]


@both_versions
@pytest.mark.parametrize("flt,yes,no", MATCH_TABLE, ids=[r[0] for r in MATCH_TABLE])
def test_wildcard_matching(broker, open_client, version, flt, yes, no):
    """[MQTT-4.7.1-1..3] single-level +, multi-level # incl. its parent level, exact
    matching is case-sensitive [MQTT-4.7.3-*]."""
    sub = open_client(broker, version)
    assert sub.subscribe([(flt, 1), (MARKER, 1)]) == [1, 1]
    pub = open_client(broker, version)
    for t in yes + no:
        pub.publish(t, t.encode(), qos=1)
    pub.publish(MARKER, b"end", qos=1)
    got = sorted(p.topic for p in until_marker(sub))
    assert got == sorted(yes), "filter %r: got %r, expected %r" % (flt, got, yes)


@both_versions
def test_dollar_topics_not_matched_by_leading_wildcards(broker, open_client, version):
    """[MQTT-4.7.2-1]: '#' and '+/...' do not match topics starting with '$'."""
    wild = open_client(broker, version)
    assert wild.subscribe([("#", 1), ("+/x", 1), ("+/+", 1)]) == [1, 1, 1]
    exact = open_client(broker, version)
    assert exact.subscribe([("$dollar/#", 1), (MARKER, 1)]) == [1, 1]
    pub = open_client(broker, version)
    pub.publish("$dollar/x", b"d", qos=1)
    pub.publish(MARKER, b"end", qos=1)
    got_exact = until_marker(exact)
    assert [p.topic for p in got_exact] == ["$dollar/x"]
    got_wild = until_marker(wild)
    assert [p.topic for p in got_wild] == [], got_wild


@pytest.mark.xfail_mosquitto(
    reason="2.0.11 disconnects on an invalid topic filter instead of a per-filter SUBACK "
           "failure (3.1.1 SUBACK 0x80 / 5.0 0x8F Topic Filter invalid)")
@both_versions
def test_invalid_filters_rejected_per_filter(broker, open_client, version):
    """[MQTT-4.7.1-2] ('#' must be last and alone in its level) and [MQTT-4.7.1-3] ('+'
    alone in its level): invalid filters get a failure code (0x80 in 3.1.1, 0x8F in 5.0)
    while valid filters in the same SUBSCRIBE are granted [MQTT-3.9.3-1]."""
    fail = 0x80 if version == 4 else m.RC_TOPIC_FILTER_INVALID
    c = open_client(broker, version)
    codes = c.subscribe([("ok/a", 1), ("a/#/b", 1), ("a+", 0), ("ok/+/c", 2), ("a/b#", 1)])
    assert codes == [1, fail, fail, 2, fail]
    pub = open_client(broker, version)
    pub.publish("ok/a", b"1", qos=1)
    pub.publish("ok/b/c", b"2", qos=2)
    got = c.publishes(2)
    assert sorted(p.payload for p in got) == [b"1", b"2"]


@both_versions
def test_unsubscribe_stops_delivery(broker, open_client, version):
    """[MQTT-3.10.4-1] / [MQTT-3.10.4-2]: after UNSUBACK no new messages for that filter."""
    sub = open_client(broker, version)
    sub.subscribe([("unsub/+", 1), (MARKER, 1)])
    pub = open_client(broker, version)
    pub.publish("unsub/a", b"before", qos=1)
    assert sub.publishes(1)[0].payload == b"before"
    sub.unsubscribe("unsub/+")
    pub.publish("unsub/a", b"after", qos=1)
    pub.publish(MARKER, b"end", qos=1)
    assert until_marker(sub) == []


def test_v5_unsuback_reason_codes(broker, open_client):
    """5.0 3.11.3: UNSUBACK has one reason code per filter; 0x11 No subscription existed."""
    c = open_client(broker, 5)
    c.subscribe([("us/a", 0)])
    assert c.unsubscribe(["us/a", "us/none"]) == [0x00, m.RC_NO_SUBSCRIPTION_EXISTED]
    assert c.unsubscribe(["us/a"]) == [m.RC_NO_SUBSCRIPTION_EXISTED]


def test_v311_unsuback_has_no_payload(broker, open_client):
    """[MQTT-3.11.3]: 3.1.1 UNSUBACK has no payload, also for filters never subscribed
    [MQTT-3.10.4-5]."""
    c = open_client(broker, 4)
    assert c.unsubscribe(["never/subscribed"]) == []


@both_versions
def test_resubscribe_replaces_qos(broker, open_client, version):
    """[MQTT-3.8.4-3]: a second SUBSCRIBE with the same filter replaces the subscription
    (one copy, at the new QoS)."""
    c = open_client(broker, version)
    assert c.subscribe([("re/sub", 2), (MARKER, 1)]) == [2, 1]
    assert c.subscribe([("re/sub", 0)]) == [0]
    pub = open_client(broker, version)
    pub.publish("re/sub", b"y", qos=2)
    pub.publish(MARKER, b"end", qos=1)
    got = until_marker(c)
    assert [(p.payload, p.qos) for p in got] == [(b"y", 0)]


@pytest.mark.xfail_mosquitto(reason="2.0.11 delivers a single copy at the QoS of the first "
                             "matching subscription (here 0), not the maximum [MQTT-3.3.5-1]")
def test_v311_overlapping_subscriptions_max_qos(broker, open_client):
    """[MQTT-3.3.5-1]: overlapping filters -> delivered at the maximum QoS of the matching
    subscriptions; any extra copies respect their own subscription's QoS."""
    c = open_client(broker, 4)
    assert c.subscribe([("ov/#", 1), ("ov/+", 2), ("ov/x", 0), (MARKER, 1)]) == [1, 2, 0, 1]
    pub = open_client(broker, 4)
    pub.publish("ov/x", b"p", qos=2)
    pub.publish(MARKER, b"end", qos=1)
    got = until_marker(c)
    assert 1 <= len(got) <= 3, got
    assert max(p.qos for p in got) == 2, got


@pytest.mark.harbormq_only
def test_v311_overlapping_subscriptions_single_copy(broker, open_client):
    """HarborMQ sends one copy at the highest QoS for overlapping 3.1.1 subscriptions."""
    c = open_client(broker, 4)
    c.subscribe([("ov/#", 1), ("ov/+", 2), (MARKER, 1)])
    pub = open_client(broker, 4)
    pub.publish("ov/x", b"p", qos=2)
    pub.publish(MARKER, b"end", qos=1)
    got = until_marker(c)
    assert [(p.payload, p.qos) for p in got] == [(b"p", 2)]


def test_v5_overlapping_subscriptions_ids_and_qos(broker, open_client):
    """5.0 [MQTT-3.3.4-2..5]: either one copy at the max QoS carrying every matching
    subscription identifier, or one copy per subscription at that subscription's QoS,
    carrying its identifier."""
    c = open_client(broker, 5)
    c.subscribe([("ov5/#", m.sub_options(1))], props={m.P_SUBSCRIPTION_ID: 1})
    c.subscribe([("ov5/+", m.sub_options(2))], props={m.P_SUBSCRIPTION_ID: 2})
    c.subscribe([(MARKER, 1)])
    pub = open_client(broker, 5)
    pub.publish("ov5/x", b"p", qos=2)
    pub.publish(MARKER, b"end", qos=1)
    got = until_marker(c)
    assert got, "no copy delivered"
    if len(got) == 1:
        p = got[0]
        assert p.qos == 2
        assert sorted(p.props.get(m.P_SUBSCRIPTION_ID, [])) == [1, 2], p
    else:
        assert len(got) == 2, got
        by_id = {tuple(p.props.get(m.P_SUBSCRIPTION_ID, [])): p.qos for p in got}
        assert by_id == {(1,): 1, (2,): 2}, got


def test_v5_subscription_identifier_delivered(broker, open_client):
    """[MQTT-3.3.4-3]: the Subscription Identifier of the matching subscription is sent."""
    c = open_client(broker, 5)
    c.subscribe([("sid/t", m.sub_options(1))], props={m.P_SUBSCRIPTION_ID: 42})
    c.subscribe([("nosid/t", m.sub_options(1))])
    pub = open_client(broker, 5)
    pub.publish("sid/t", b"a", qos=1)
    pub.publish("nosid/t", b"b", qos=1)
    got = c.publishes(2)
    assert got[0].props.get(m.P_SUBSCRIPTION_ID) == [42]
    assert m.P_SUBSCRIPTION_ID not in got[1].props


def test_v5_no_local(broker, open_client):
    """[MQTT-3.8.3-3]: with No Local, a client's own messages are not sent back to it."""
    c = open_client(broker, 5)
    c.subscribe([("nl/t", m.sub_options(1, no_local=True)), (MARKER, 1)])
    other = open_client(broker, 5)
    other.subscribe([("nl/t", 1)])
    # Order is guaranteed per publisher only, so each batch ends with a marker from the
    # same publisher as the message it follows.
    c.publish("nl/t", b"mine", qos=1)
    c.publish(MARKER, b"end", qos=1)
    assert other.publishes(1)[0].payload == b"mine"
    assert until_marker(c) == []
    other.publish("nl/t", b"theirs", qos=1)
    other.publish(MARKER, b"end", qos=1)
    got = until_marker(c)
    assert [p.payload for p in got] == [b"theirs"]


def test_v5_retain_as_published(broker, open_client):
    """[MQTT-3.3.1-12] / [MQTT-3.3.1-13]: Retain As Published keeps RETAIN=1 on messages
    forwarded to existing subscriptions; otherwise RETAIN is 0."""
    rap = open_client(broker, 5)
    rap.subscribe([("rap/t", m.sub_options(1, retain_as_published=True))])
    plain = open_client(broker, 5)
    plain.subscribe([("rap/t", m.sub_options(1))])
    pub = open_client(broker, 5)
    pub.publish("rap/t", b"r", qos=1, retain=True)
    pub.publish("rap/t", b"n", qos=1, retain=False)
    a = rap.publishes(2)
    b = plain.publishes(2)
    assert [(p.payload, p.retain) for p in a] == [(b"r", True), (b"n", False)]
    assert [(p.payload, p.retain) for p in b] == [(b"r", False), (b"n", False)]
    pub.publish("rap/t", b"", qos=1, retain=True)  # clean the retained message


@both_versions
def test_shared_subscription_each_message_to_one_member(broker, open_client, version):
    """5.0 4.8.2 [MQTT-4.8.2-*]: $share/{group}/{filter}: each message goes to exactly one
    member of the group; a normal subscription still gets every message."""
    members = [open_client(broker, version) for _ in range(3)]
    for c in members:
        assert c.subscribe([("$share/grp/sh/+", 1)]) == [1]
    normal = open_client(broker, version)
    normal.subscribe([("sh/+", 1)])
    pub = open_client(broker, version)
    n = 30
    for i in range(n):
        pub.publish("sh/t", b"%d" % i, qos=1)
    per = collect_from(members, n)
    payloads = [p.payload for lst in per for p in lst]
    assert sorted(payloads) == sorted(b"%d" % i for i in range(n)), "duplicates or losses"
    assert all(p.topic == "sh/t" for lst in per for p in lst)
    assert len(normal.publishes(n)) == n
    for c in members:
        c.no_publish(0.3)


def test_v5_suback_reason_is_granted_qos(broker, open_client):
    """5.0 3.9.3: SUBACK reason codes 0x00..0x02 are the granted QoS."""
    c = open_client(broker, 5)
    assert c.subscribe([("g/0", 0), ("g/1", 1), ("g/2", 2)]) == [0, 1, 2]


@both_versions
def test_unsubscribe_from_shared_subscription(broker, open_client, version):
    """5.0 4.8.2: a member that unsubscribes from $share/g/f gets no more messages; the
    remaining member gets them all."""
    a = open_client(broker, version)
    b = open_client(broker, version)
    for c in (a, b):
        c.subscribe([("$share/g2/shu/t", 1)])
    assert a.unsubscribe("$share/g2/shu/t") in ([], [0])
    a.subscribe([(MARKER, 1)])
    pub = open_client(broker, version)
    for i in range(10):
        pub.publish("shu/t", b"%d" % i, qos=1)
    pub.publish(MARKER, b"end", qos=1)
    assert until_marker(a) == []
    assert sorted(p.payload for p in b.publishes(10)) == sorted(b"%d" % i for i in range(10))
