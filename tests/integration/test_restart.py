"""Broker restarts: with persistence (HarborMQ `sqlite {}`, Mosquitto `persistence true`)
sessions, queues and retained messages survive; without it they do not (DESIGN 4)."""

import pytest

import mqttraw as m
from helpers import both_versions, unique_id


def persistent_kw(version):
    if version == 5:
        return {"clean": False, "props": {m.P_SESSION_EXPIRY: 600}}
    return {"clean": False}


def offline_subscriber(broker, open_client, version, topic, qos=1):
    cid = unique_id("persist")
    c = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert c.subscribe([(topic, qos)]) == [qos]
    c.disconnect()
    return cid


@both_versions
def test_session_queue_and_retained_survive_clean_restart(make_broker, open_client, version):
    """A client with clean_start=0 gets session_present=1 after a restart, its queued
    QoS 1/2 messages and retained messages are still there."""
    broker = make_broker(persistence=True)
    cid = offline_subscriber(broker, open_client, version, "pr/t", qos=2)
    pub = open_client(broker, version)
    for i in range(20):
        pub.publish("pr/t", b"%d" % i, qos=1 + i % 2)
    pub.publish("pr/retained", b"kept", qos=1, retain=True)
    pub.close()
    broker.restart()
    c = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert c.connack.session_present is True
    got = c.publishes(20, 10)
    assert [p.payload for p in got] == [b"%d" % i for i in range(20)]
    r = open_client(broker, version)
    r.subscribe([("pr/retained", 1)])
    p = r.publishes(1)[0]
    assert (p.payload, p.retain) == (b"kept", True)


@both_versions
def test_without_persistence_restart_forgets_sessions(make_broker, open_client, version):
    """No sqlite {} block: nothing is stored, a restart starts empty."""
    broker = make_broker()
    cid = offline_subscriber(broker, open_client, version, "np/t")
    broker.restart()
    c = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert c.connack.session_present is False


@pytest.mark.harbormq_only
@both_versions
def test_acknowledged_messages_survive_kill9(make_broker, open_client, version):
    """DESIGN 4: a QoS 1/2 PUBLISH is acknowledged only after it is durable, so every
    acknowledged message survives kill -9 (QoS 2 exactly once)."""
    broker = make_broker(persistence=True)
    cid = offline_subscriber(broker, open_client, version, "k9/t", qos=2)
    pub = open_client(broker, version)
    n = 200
    for i in range(n):
        pub.publish("k9/t", b"%d" % i, qos=1 + i % 2)
    broker.kill9()
    pub.close()
    broker.start()
    c = open_client(broker, version, client_id=cid, **persistent_kw(version))
    assert c.connack.session_present is True
    got = c.publishes(n, 15)
    assert [p.payload for p in got] == [b"%d" % i for i in range(n)]
    c.no_publish(1.0)
