"""A session stays on the shard it was created on (broker::SessionDirectory): a CONNECT with
its client id accepted on any other shard is moved to it. With 4 shards, connections land on
shards at random (EPOLLEXCLUSIVE), so each round below reaches the session from wherever the
kernel put the socket: resume, takeover and clean start must behave as on one shard, and a
session restored from the store must be found the same way. HarborMQ only (shards)."""

import pytest

import mqttraw as m
from helpers import unique_id

pytestmark = pytest.mark.harbormq_only

SHARDS = "system { num_taskq_thread = 4 }\n"
ROUNDS = 16


def persistent(version):
    if version == 5:
        return {"clean": False, "props": {m.P_SESSION_EXPIRY: 300}}
    return {"clean": False}


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_resume_takeover_and_clean_start_from_any_shard(make_broker, open_client, version):
    b = make_broker(extra_conf=SHARDS)
    pub = open_client(b, version)
    cid = unique_id("shards")
    s = open_client(b, version, client_id=cid, **persistent(version))
    assert s.subscribe([("shards/t", 1)]) == [1]
    s.disconnect_and_wait()
    for i in range(ROUNDS):
        pub.publish("shards/t", b"offline-%d" % i, qos=1)
        s = open_client(b, version, client_id=cid, **persistent(version))
        assert s.connack.session_present is True, "round %d" % i
        assert s.publishes(1)[0].payload == b"offline-%d" % i
        # A second connection with the id, on whichever shard: takes the live session over.
        t = open_client(b, version, client_id=cid, **persistent(version))
        assert t.connack.session_present is True, "round %d" % i
        got = s.wait_closed(5)
        if version == 5:
            assert [p.reason for p in got if p.type == m.DISCONNECT] == [m.RC_SESSION_TAKEN_OVER]
        pub.publish("shards/t", b"online-%d" % i, qos=1)
        assert t.publishes(1)[0].payload == b"online-%d" % i
        t.disconnect_and_wait()
    # A clean start, from any shard, discards the session: no subscription is left.
    c = open_client(b, version, client_id=cid, clean=True)
    assert c.connack.session_present is False
    pub.publish("shards/t", b"after clean start", qos=1)
    c.no_publish(0.5)
    c.disconnect_and_wait()
    # The id is free again: a fresh persistent session starts empty, on any shard.
    for i in range(4):
        n = open_client(b, version, client_id=cid, **persistent(version))
        assert n.connack.session_present is (i > 0)
        n.disconnect_and_wait()


def test_many_ids_each_resume_their_own_session(make_broker, open_client):
    b = make_broker(extra_conf=SHARDS)
    pub = open_client(b, 4)
    ids = [unique_id("many%d-" % i) for i in range(24)]
    for i, cid in enumerate(ids):
        s = open_client(b, 4, client_id=cid, clean=False)
        assert s.subscribe([("many/%d" % i, 1)]) == [1]
        s.disconnect_and_wait()
    for i in range(len(ids)):
        pub.publish("many/%d" % i, b"for %d" % i, qos=1)
    for i, cid in enumerate(ids):
        s = open_client(b, 4, client_id=cid, clean=False)
        assert s.connack.session_present is True
        assert s.publishes(1)[0].payload == b"for %d" % i
        s.no_publish(0.1)
        s.disconnect_and_wait()


def test_restored_sessions_are_found_from_any_shard(persist_broker, open_client):
    b = persist_broker(extra_conf=SHARDS)
    ids = [unique_id("restored%d-" % i) for i in range(12)]
    for i, cid in enumerate(ids):
        s = open_client(b, 4, client_id=cid, clean=False)
        assert s.subscribe([("restored/%d" % i, 1)]) == [1]
        s.disconnect_and_wait()
    pub = open_client(b, 4)
    for i in range(len(ids)):
        pub.publish("restored/%d" % i, b"kept %d" % i, qos=1)
    pub.disconnect()
    b.kill9()
    b.start()
    for rnd in range(2):
        for i, cid in enumerate(ids):
            s = open_client(b, 4, client_id=cid, clean=False)
            assert s.connack.session_present is True, (rnd, cid)
            if rnd == 0:
                assert s.publishes(1)[0].payload == b"kept %d" % i
            s.no_publish(0.1)
            s.disconnect_and_wait()
