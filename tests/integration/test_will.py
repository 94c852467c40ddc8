"""Will messages."""

import time

import pytest

import mqttraw as m
from helpers import both_versions, unique_id


def will(topic, payload=b"will", qos=1, retain=False, props=None):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain, "props": props}


def watcher(broker, open_client, version, flt):
    w = open_client(broker, version)
    w.subscribe([(flt, 2), ("w/marker", 1)])
    return w


def nothing_but_marker(broker, open_client, version, w):
    pub = open_client(broker, version)
    pub.publish("w/marker", b"end", qos=1)
    p = w.publishes(1)[0]
    assert p.topic == "w/marker", "unexpected %r" % p


@both_versions
def test_will_on_socket_close_without_disconnect(broker, open_client, version):
    """[MQTT-3.1.2-8]: connection closed without DISCONNECT -> will published."""
    w = watcher(broker, open_client, version, "w/close")
    c = open_client(broker, version, will=will("w/close", b"bye"))
    c.close()
    p = w.publishes(1)[0]
    assert (p.topic, p.payload) == ("w/close", b"bye")


@both_versions
def test_will_on_keepalive_timeout(broker, open_client, version):
    """[MQTT-3.1.2-8] / [MQTT-3.1.2-24]: keepalive expiry -> will published. (The timing
    itself is checked in test_connect.py; this test allows a lazy timer.)"""
    w = watcher(broker, open_client, version, "w/ka")
    open_client(broker, version, keepalive=1, will=will("w/ka", b"timeout"))
    p = w.publishes(1, 8.0)[0]
    assert p.payload == b"timeout"


@both_versions
def test_will_on_protocol_error(broker, open_client, version):
    """[MQTT-3.1.2-8] / 5.0 3.1.2.5: closed by the server for a protocol error -> will."""
    w = watcher(broker, open_client, version, "w/err")
    c = open_client(broker, version, will=will("w/err", b"err"))
    c.send(m.packet(m.PUBREL, 0x00, m.u16(1)))  # reserved flags wrong
    c.wait_closed(5)
    assert w.publishes(1)[0].payload == b"err"


@both_versions
def test_no_will_after_normal_disconnect(broker, open_client, version):
    """[MQTT-3.1.2-10] (3.1.1) / [MQTT-3.1.2-10] (5.0, reason 0x00): a normal DISCONNECT
    deletes the will."""
    w = watcher(broker, open_client, version, "w/normal")
    c = open_client(broker, version, will=will("w/normal"))
    c.disconnect()
    nothing_but_marker(broker, open_client, version, w)


@both_versions
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_will_qos_and_retain_honoured(broker, open_client, version, qos):
    """[MQTT-3.1.2-14..17] (3.1.1): Will QoS and Will Retain are used for the will."""
    w = watcher(broker, open_client, version, "w/qr")
    c = open_client(broker, version, will=will("w/qr", b"q", qos=qos, retain=True))
    c.close()
    p = w.publishes(1)[0]
    assert (p.payload, p.qos, p.retain) == (b"q", qos, False)
    late = open_client(broker, version)
    late.subscribe([("w/qr", 2)])
    r = late.publishes(1)[0]
    assert (r.payload, r.qos, r.retain) == (b"q", qos, True)


def test_v5_disconnect_with_will_message_reason(broker, open_client):
    """5.0 3.14.2.1: DISCONNECT with reason 0x04 (Disconnect with Will Message) -> the
    will is published."""
    w = watcher(broker, open_client, 5, "w/04")
    c = open_client(broker, 5, will=will("w/04", b"asked"))
    c.disconnect(reason=m.RC_DISCONNECT_WITH_WILL)
    assert w.publishes(1)[0].payload == b"asked"


def test_v5_will_delay_interval(broker, open_client):
    """5.0 3.1.3.2.2: the will is published after the Will Delay Interval (2 s)."""
    w = watcher(broker, open_client, 5, "w/delay")
    c = open_client(broker, 5, client_id=unique_id("wd"), props={m.P_SESSION_EXPIRY: 60},
                    will=will("w/delay", b"late", props={m.P_WILL_DELAY: 2}))
    c.close()
    t0 = time.monotonic()
    p = w.publishes(1, 6.0)[0]
    elapsed = time.monotonic() - t0
    assert p.payload == b"late"
    assert 1.5 <= elapsed <= 4.5, "will published %.2fs after close, delay is 2s" % elapsed


def test_v5_will_not_sent_if_client_reconnects_within_delay(broker, open_client):
    """5.0 [MQTT-3.1.3-9]: a new connection to the session before the Will Delay Interval
    passes cancels the will."""
    cid = unique_id("wdr")
    w = watcher(broker, open_client, 5, "w/cancel")
    c = open_client(broker, 5, client_id=cid, props={m.P_SESSION_EXPIRY: 60},
                    will=will("w/cancel", b"x", props={m.P_WILL_DELAY: 2}))
    c.close()
    c = open_client(broker, 5, client_id=cid, clean=False, props={m.P_SESSION_EXPIRY: 60})
    assert c.connack.session_present
    w.no_publish(3.5)


@pytest.mark.xfail_mosquitto(reason="2.0.11 waits for the will delay although the session "
                             "(expiry 0) ended at the close (5.0 3.1.3.2.2)")
def test_v5_will_sent_when_session_ends_before_delay(broker, open_client):
    """5.0 3.1.3.2.2: the will is published when the Will Delay Interval passes or the
    session ends, whichever comes first (session expiry 0 -> at once)."""
    w = watcher(broker, open_client, 5, "w/sessend")
    c = open_client(broker, 5, will=will("w/sessend", b"now", props={m.P_WILL_DELAY: 30}))
    c.close()
    assert w.publishes(1, 3.0)[0].payload == b"now"


@both_versions
def test_will_published_on_takeover_of_connection(broker, open_client, version):
    """3.1.1 [MQTT-3.1.4-2] + [MQTT-3.1.2-8]: the connection closed by a takeover did not
    send DISCONNECT, so its will is published (5.0: the taken-over connection's will is
    published too, with a clean start new session)."""
    cid = unique_id("wto")
    w = watcher(broker, open_client, version, "w/takeover")
    open_client(broker, version, client_id=cid, will=will("w/takeover", b"old"))
    open_client(broker, version, client_id=cid)
    assert w.publishes(1)[0].payload == b"old"


@both_versions
def test_will_topic_with_wildcard_rejected(broker, open_client, version):
    """[MQTT-3.1.3-10] / 3.3.2: the Will Topic is a Topic Name, wildcards are not allowed ->
    the connection is refused (CONNACK failure code, 5.0: e.g. 0x90) or closed."""
    c = open_client(broker, version, connect=False)
    c.send(m.connect_packet(unique_id(), version, will=will("w/+/bad")))
    got = c.wait_closed(5)
    assert all(p.type == m.CONNACK and p.reason != 0 for p in got), got
