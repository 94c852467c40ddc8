"""Retained messages."""

import time

import pytest

import mqttraw as m
from helpers import both_versions, unique_id


def subscribe_and_get_retained(broker, open_client, version, filters, n, timeout=5.0):
    c = open_client(broker, version)
    c.subscribe(filters)
    return c, (c.publishes(n, timeout) if n else [])


@both_versions
def test_latest_retained_per_topic_with_retain_flag(broker, open_client, version):
    """[MQTT-3.3.1-5]: the server keeps the latest retained message per topic and sends it
    to new subscriptions with RETAIN=1 [MQTT-3.3.1-8] (3.1.1) / 5.0 3.3.1.3."""
    pub = open_client(broker, version)
    pub.publish("ret/a", b"v1", qos=1, retain=True)
    pub.publish("ret/a", b"v2", qos=1, retain=True)
    pub.publish("ret/b", b"b1", qos=1, retain=True)
    c, got = subscribe_and_get_retained(broker, open_client, version, [("ret/a", 1)], 1)
    assert [(p.topic, p.payload, p.retain) for p in got] == [("ret/a", b"v2", True)]
    c.no_publish(0.5)


@both_versions
def test_empty_retained_payload_deletes(broker, open_client, version):
    """[MQTT-3.3.1-10] / [MQTT-3.3.1-11] (3.1.1), 5.0 [MQTT-3.3.1-6] / [MQTT-3.3.1-7]: a
    retained message with an empty payload removes the retained message and is not stored;
    existing subscribers still receive it."""
    pub = open_client(broker, version)
    existing = open_client(broker, version)
    existing.subscribe([("del/t", 1)])
    pub.publish("del/t", b"keep", qos=1, retain=True)
    assert existing.publishes(1)[0].payload == b"keep"
    pub.publish("del/t", b"", qos=1, retain=True)
    assert existing.publishes(1)[0].payload == b""
    c, _ = subscribe_and_get_retained(broker, open_client, version, [("del/t", 1)], 0)
    c.no_publish(1.0)


@both_versions
def test_retained_matched_by_wildcards(broker, open_client, version):
    """3.1.1 [MQTT-3.3.1-6] / 5.0 3.3.1.3: all retained messages matching a wildcard
    filter are sent."""
    pub = open_client(broker, version)
    for t in ("rw/a", "rw/b/c", "rw2/x", "rw"):
        pub.publish(t, t.encode(), qos=1, retain=True)
    _, got = subscribe_and_get_retained(broker, open_client, version, [("rw/#", 1)], 3)
    assert sorted(p.topic for p in got) == ["rw", "rw/a", "rw/b/c"]
    assert all(p.retain for p in got)
    _, got = subscribe_and_get_retained(broker, open_client, version, [("+/x", 1)], 1)
    assert [p.topic for p in got] == ["rw2/x"]


@both_versions
def test_retained_resent_on_resubscribe(broker, open_client, version):
    """3.1.1 [MQTT-3.8.4-3] / 5.0 retain handling 0: a repeated SUBSCRIBE for the same
    filter re-sends the matching retained messages."""
    pub = open_client(broker, version)
    pub.publish("rs/t", b"r", qos=1, retain=True)
    c, got = subscribe_and_get_retained(broker, open_client, version, [("rs/t", 1)], 1)
    assert got[0].payload == b"r"
    c.subscribe([("rs/t", 1)])
    again = c.publishes(1)[0]
    assert (again.payload, again.retain) == (b"r", True)


@both_versions
def test_retained_resent_on_resubscribe_of_persistent_session(broker, open_client, version):
    """A persistent session that re-subscribes after reconnecting gets the retained
    message again (same rule as above, subscription already existed)."""
    pub = open_client(broker, version)
    pub.publish("rsp/t", b"r", qos=1, retain=True)
    cid = unique_id("retsess")
    kw = {"clean": False}
    if version == 5:
        kw["props"] = {m.P_SESSION_EXPIRY: 60}
    c = open_client(broker, version, client_id=cid, **kw)
    c.subscribe([("rsp/t", 1)])
    assert c.publishes(1)[0].payload == b"r"
    c.disconnect()
    c = open_client(broker, version, client_id=cid, **kw)
    assert c.connack.session_present
    c.subscribe([("rsp/t", 1)])
    p = c.publishes(1)[0]
    assert (p.payload, p.retain) == (b"r", True)


@both_versions
@pytest.mark.parametrize("msg_qos,sub_qos", [(2, 1), (0, 2), (1, 0), (2, 2)])
def test_retained_delivered_at_min_qos(broker, open_client, version, msg_qos, sub_qos):
    """3.1.1 3.8.4 / 5.0 3.8.4: retained messages are sent at min(message QoS, granted)."""
    pub = open_client(broker, version)
    pub.publish("rq/t", b"x", qos=msg_qos, retain=True)
    _, got = subscribe_and_get_retained(broker, open_client, version, [("rq/t", sub_qos)], 1)
    assert got[0].qos == min(msg_qos, sub_qos)


def test_v5_retain_handling_1_only_for_new_subscription(broker, open_client):
    """5.0 [MQTT-3.3.1-10]: Retain Handling 1 sends retained messages only if the
    subscription did not exist already."""
    pub = open_client(broker, 5)
    pub.publish("rh1/t", b"r", qos=1, retain=True)
    c = open_client(broker, 5)
    c.subscribe([("rh1/t", m.sub_options(1, retain_handling=1))])
    assert c.publishes(1)[0].payload == b"r"
    c.subscribe([("rh1/t", m.sub_options(1, retain_handling=1))])
    c.no_publish(1.0)


def test_v5_retain_handling_2_never(broker, open_client):
    """5.0 [MQTT-3.3.1-11]: Retain Handling 2 sends no retained messages."""
    pub = open_client(broker, 5)
    pub.publish("rh2/t", b"r", qos=1, retain=True)
    c = open_client(broker, 5)
    c.subscribe([("rh2/t", m.sub_options(1, retain_handling=2))])
    c.no_publish(1.0)
    # but live messages flow
    pub.publish("rh2/t", b"live", qos=1)
    assert c.publishes(1)[0].payload == b"live"


@both_versions
def test_retained_publish_to_existing_subscriber_has_retain_0(broker, open_client, version):
    """3.1.1 [MQTT-3.3.1-9]: a retained message forwarded to an already established
    subscription has RETAIN=0 (5.0: unless Retain As Published)."""
    c = open_client(broker, version)
    c.subscribe([("rx/t", 1)])
    pub = open_client(broker, version)
    pub.publish("rx/t", b"r", qos=1, retain=True)
    p = c.publishes(1)[0]
    assert (p.payload, p.retain) == (b"r", False)


@both_versions
def test_retained_qos0_message_stored(broker, open_client, version):
    """3.1.1 [MQTT-3.3.1-7] / 5.0 [MQTT-3.3.1-5]: a QoS 0 retained message replaces the
    stored one and is kept."""
    pub = open_client(broker, version)
    pub.publish("r0/t", b"old", qos=1, retain=True)
    pub.publish("r0/t", b"new", qos=0, retain=True)
    pub.ping()  # the QoS 0 publish was processed before the PINGREQ
    _, got = subscribe_and_get_retained(broker, open_client, version, [("r0/t", 1)], 1)
    assert (got[0].payload, got[0].qos) == (b"new", 0)


def test_v5_expired_retained_message_not_sent(broker, open_client):
    """5.0 [MQTT-3.3.2-5]: a retained message whose Message Expiry Interval passed is not
    sent to new subscribers."""
    pub = open_client(broker, 5)
    pub.publish("rexp/short", b"s", qos=1, retain=True, props={m.P_MESSAGE_EXPIRY: 1})
    pub.publish("rexp/long", b"l", qos=1, retain=True, props={m.P_MESSAGE_EXPIRY: 60})
    time.sleep(2.2)  # the elapsed time is what is under test, not a synchronisation
    c = open_client(broker, 5)
    c.subscribe([("rexp/#", 1)])
    got = c.publishes(1)
    assert got[0].payload == b"l"
    c.no_publish(0.5)
