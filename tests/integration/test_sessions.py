"""Sessions: persistence of subscriptions and queued messages across reconnects, session
present, clean session, session expiry, queue limits, redelivery on reconnect."""

import time

import pytest

import mqttraw as m
from helpers import both_versions, is_mosquitto, unique_id


def persistent_kw(version, expiry=300):
    """Connect arguments for a session that outlives the connection."""
    if version == 5:
        return {"clean": False, "props": {m.P_SESSION_EXPIRY: expiry}}
    return {"clean": False}


def fresh_persistent(broker, open_client, version, cid, **kw):
    """Start a brand-new persistent session (first connect: clean, then persistent)."""
    c = open_client(broker, version, client_id=cid, clean=True)
    c.disconnect()
    return open_client(broker, version, client_id=cid, **persistent_kw(version), **kw)


def until_payload(client, last, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "did not see %r; got %d: %r" % (last, len(got), got[-3:])
        p = client.publishes(1, left)[0]
        got.append(p)
        if p.payload == last:
            return got


@both_versions
def test_persistent_session_keeps_subscriptions_and_queues(broker, open_client, version):
    """3.1.1 [MQTT-3.1.2-4] / [MQTT-3.1.2-5], 5.0 [MQTT-3.1.2-5]: the session (subscriptions
    + QoS 1/2 messages published while offline) survives the disconnect; on reconnect
    session present = 1 [MQTT-3.2.2-2] and the queued messages are delivered in order."""
    cid = unique_id("persist")
    s = fresh_persistent(broker, open_client, version, cid)
    assert s.connack.session_present is False
    assert s.subscribe([("ps/t", 2)]) == [2]
    s.disconnect()
    pub = open_client(broker, version)
    for i in range(6):
        pub.publish("ps/t", b"q%d" % i, qos=1 + i % 2)
    s = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert s.connack.session_present is True
    got = s.publishes(6)
    assert [(p.payload, p.qos) for p in got] == [(b"q%d" % i, 1 + i % 2) for i in range(6)]
    # the subscription itself is still there
    pub.publish("ps/t", b"online", qos=1)
    assert s.publishes(1)[0].payload == b"online"


@both_versions
def test_clean_session_discards_state(broker, open_client, version):
    """3.1.1 [MQTT-3.1.2-6] / 5.0 [MQTT-3.1.2-4]: a clean connect discards the previous
    session: session present = 0 and old subscriptions are gone."""
    cid = unique_id("clean")
    s = fresh_persistent(broker, open_client, version, cid)
    s.subscribe([("cs/t", 1)])
    s.disconnect()
    pub = open_client(broker, version)
    pub.publish("cs/t", b"while-away", qos=1)
    s = open_client(broker, version, client_id=cid, clean=True)
    assert s.connack.session_present is False
    s.subscribe([("cs/marker", 1)])
    pub.publish("cs/t", b"after", qos=1)
    pub.publish("cs/marker", b"end", qos=1)
    got = until_payload(s, b"end")
    assert [p.payload for p in got] == [b"end"]


def test_v311_clean_session_state_not_kept_after_disconnect(broker, open_client):
    """[MQTT-3.1.2-6]: the state of a CleanSession=1 connection ends with it."""
    cid = unique_id("clean311")
    s = open_client(broker, 4, client_id=cid, clean=True)
    s.subscribe([("cs2/t", 1)])
    s.disconnect()
    s = open_client(broker, 4, client_id=cid, clean=False)
    assert s.connack.session_present is False


def test_v5_session_expiry_zero_ends_session_at_disconnect(broker, open_client):
    """5.0 [MQTT-3.1.2-23]: Session Expiry Interval absent/0 -> the session ends when the
    connection closes, even with Clean Start = 0."""
    cid = unique_id("exp0")
    s = open_client(broker, 5, client_id=cid, clean=False)
    s.subscribe([("e0/t", 1)])
    s.disconnect()
    s = open_client(broker, 5, client_id=cid, clean=False,
                    props={m.P_SESSION_EXPIRY: 60})
    assert s.connack.session_present is False


def test_v5_session_expires_after_interval(broker, open_client):
    """5.0 3.1.2.11.2: a session with expiry 1 s is gone 2.5 s after the disconnect, and
    the reconnect within the interval resumes it."""
    cid = unique_id("exp1")
    s = open_client(broker, 5, client_id=cid, clean=True, props={m.P_SESSION_EXPIRY: 30})
    s.subscribe([("e1/t", 1)])
    s.disconnect()
    s = open_client(broker, 5, client_id=cid, clean=False, props={m.P_SESSION_EXPIRY: 1})
    assert s.connack.session_present is True
    s.disconnect()
    time.sleep(2.5)  # the elapsed time is what is under test, not a synchronisation
    s = open_client(broker, 5, client_id=cid, clean=False, props={m.P_SESSION_EXPIRY: 1})
    assert s.connack.session_present is False


def test_v5_disconnect_can_shorten_session_expiry(broker, open_client):
    """5.0 3.14.2.2.2: DISCONNECT may carry Session Expiry Interval (here 0: end now)."""
    cid = unique_id("expdisc")
    s = open_client(broker, 5, client_id=cid, clean=True, props={m.P_SESSION_EXPIRY: 60})
    s.subscribe([("ed/t", 1)])
    s.disconnect(reason=0, props={m.P_SESSION_EXPIRY: 0})
    s = open_client(broker, 5, client_id=cid, clean=False, props={m.P_SESSION_EXPIRY: 60})
    assert s.connack.session_present is False


@both_versions
def test_offline_queue_bounded_by_max_mqueue_len(make_broker, open_client, version):
    """mqtt.max_mqueue_len = 1000: 1200 messages published while the subscriber is offline
    -> at most the limit are delivered, in order, as a contiguous run (either the oldest or
    the newest were dropped). The subscriber waits until the broker has closed its side
    after DISCONNECT, so no message can still go in flight to the old connection and the
    limit is exact for HarborMQ. Mosquitto documents max_queued_messages as counted above
    max_inflight_messages, so it may hold 20 more."""
    broker = make_broker(max_mqueue_len=1000)
    limit = 1000 + (20 if is_mosquitto() else 0)
    cid = unique_id("mq")
    s = fresh_persistent(broker, open_client, version, cid)
    s.subscribe([("mq/t", 1)])
    s.disconnect_and_wait()
    pub = open_client(broker, version)
    total = 1200
    for i in range(total):
        pub.publish("mq/t", b"%d" % i, qos=1)
    s = open_client(broker, version, client_id=cid, **persistent_kw(version))
    pub.publish("mq/t", b"END", qos=1)
    got = until_payload(s, b"END", 20)
    nums = [int(p.payload) for p in got[:-1]]
    assert 1000 <= len(nums) <= limit, "got %d queued messages" % len(nums)
    assert nums == list(range(nums[0], nums[0] + len(nums))), "not a contiguous ordered run"
    assert nums[0] == 0 or nums[-1] == total - 1, "neither oldest nor newest kept: %d..%d" % (
        nums[0], nums[-1])


@both_versions
def test_reconnect_resends_inflight_with_dup_then_queue_promptly(broker, open_client,
                                                                 version):
    """3.1.1 [MQTT-4.4.0-1] / 5.0 [MQTT-4.4.0-1]: on reconnect with a session, unacknowledged
    PUBLISH packets are resent first with DUP=1 [MQTT-3.3.1-1], same packet ids, in the
    original order [MQTT-4.6.0-1]; then the offline queue follows at once (200 messages
    within 3 s, not one per retry tick)."""
    cid = unique_id("redeliver")
    s = fresh_persistent(broker, open_client, version, cid)
    s.subscribe([("rd/t", 1)])
    s.auto_ack = False
    pub = open_client(broker, version)
    for i in range(10):
        pub.publish("rd/t", b"inflight-%d" % i, qos=1)
    first = s.publishes(10)
    s.close()  # no PUBACK, no DISCONNECT
    for i in range(200):
        pub.publish("rd/t", b"queued-%d" % i, qos=1)
    s = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert s.connack.session_present is True
    t0 = time.monotonic()
    got = s.publishes(210, 3.0)
    elapsed = time.monotonic() - t0
    resent = got[:10]
    assert [p.payload for p in resent] == [p.payload for p in first]
    assert [p.pid for p in resent] == [p.pid for p in first]
    assert all(p.dup for p in resent), "resent PUBLISH without DUP=1: %r" % resent
    assert [p.payload for p in got[10:]] == [b"queued-%d" % i for i in range(200)]
    assert elapsed < 3.0


@both_versions
def test_reconnect_resends_pubrel_in_pubrel_stage(broker, open_client, version):
    """[MQTT-4.4.0-1] / [MQTT-4.3.3-*]: a QoS 2 message whose PUBREC was received by the
    server is continued with PUBREL on reconnect, and not delivered again as PUBLISH."""
    cid = unique_id("pubrel")
    s = fresh_persistent(broker, open_client, version, cid)
    s.subscribe([("pr/t", 2)])
    s.auto_ack = False
    pub = open_client(broker, version)
    pub.publish("pr/t", b"two", qos=2)
    p = s.publishes(1)[0]
    s.send(m.ack_packet(m.PUBREC, p.pid, version))
    rel = s.wait_for(m.PUBREL, pid=p.pid)
    assert rel.flags == 0x02
    s.close()  # no PUBCOMP
    s = open_client(broker, version, client_id=cid, **persistent_kw(version))
    s.auto_ack = False
    rel2 = s.wait_for(m.PUBREL, pid=p.pid)
    assert rel2.pid == p.pid
    s.send(m.ack_packet(m.PUBCOMP, p.pid, version))
    s.no_publish(1.0)


@pytest.mark.harbormq_only
def test_v311_online_resend_after_retry_interval(broker, open_client):
    """HarborMQ mqtt.retry_interval = 2s: an unacknowledged QoS 1 PUBLISH to a connected
    3.1.1 client is resent with DUP=1 and the same packet id (3.1.1 4.4 allows this)."""
    s = open_client(broker, 4)
    s.subscribe([("rt/t", 1)])
    s.auto_ack = False
    pub = open_client(broker, 4)
    pub.publish("rt/t", b"r", qos=1)
    p = s.publishes(1)[0]
    t0 = time.monotonic()
    again = s.publishes(1, 4.0)[0]
    elapsed = time.monotonic() - t0
    assert (again.pid, again.payload, again.dup) == (p.pid, b"r", True)
    assert 1.5 <= elapsed <= 3.5, "resent after %.2fs, retry_interval is 2s" % elapsed
    s.send(m.ack_packet(m.PUBACK, p.pid))


def test_v5_no_resend_while_connected(broker, open_client):
    """5.0 [MQTT-4.4.0-1]: a connected 5.0 client MUST NOT receive resends (even with
    retry_interval = 2s) -- only reconnects trigger them."""
    s = open_client(broker, 5)
    s.subscribe([("nr/t", 1)])
    s.auto_ack = False
    pub = open_client(broker, 5)
    pub.publish("nr/t", b"x", qos=1)
    s.publishes(1)
    s.no_publish(3.0)


def test_v5_expired_message_not_delivered_from_queue(broker, open_client):
    """5.0 [MQTT-3.3.2-5]: a queued message whose Message Expiry Interval passed before
    delivery started is deleted; unexpired ones are delivered."""
    cid = unique_id("mexpq")
    s = fresh_persistent(broker, open_client, 5, cid)
    s.subscribe([("mq5/t", 1)])
    s.disconnect()
    pub = open_client(broker, 5)
    pub.publish("mq5/t", b"short", qos=1, props={m.P_MESSAGE_EXPIRY: 1})
    pub.publish("mq5/t", b"long", qos=1, props={m.P_MESSAGE_EXPIRY: 60})
    time.sleep(2.2)  # the elapsed time is what is under test, not a synchronisation
    s = open_client(broker, 5, client_id=cid, **persistent_kw(5))
    got = s.publishes(1)
    assert got[0].payload == b"long"
    assert got[0].props.get(m.P_MESSAGE_EXPIRY, 0) <= 58
    s.no_publish(0.5)


@both_versions
def test_takeover_keeps_persistent_session(broker, open_client, version):
    """[MQTT-3.1.4-2] / 5.0 3.1.4: a takeover with a persistent session continues it: the
    new connection has session present = 1 and the subscriptions still deliver."""
    cid = unique_id("tkp")
    old = fresh_persistent(broker, open_client, version, cid)
    old.subscribe([("tkp/t", 1)])
    new = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert new.connack.session_present is True
    old.wait_closed(5)
    pub = open_client(broker, version)
    pub.publish("tkp/t", b"to-new", qos=1)
    assert new.publishes(1)[0].payload == b"to-new"


@both_versions
def test_keepalive_zero_disables_timeout(broker, open_client, version):
    """[MQTT-3.1.2-10..] 3.1.2.10: Keep Alive 0 turns the keepalive mechanism off (unless a
    5.0 server announces its own Server Keep Alive)."""
    c = open_client(broker, version, keepalive=0)
    if version == 5 and m.P_SERVER_KEEP_ALIVE in c.connack.props:
        pytest.skip("server imposed Server Keep Alive %d" % c.connack.props[
            m.P_SERVER_KEEP_ALIVE])
    c.no_publish(2.5)  # silent for longer than any small keepalive
    assert c.is_open()
