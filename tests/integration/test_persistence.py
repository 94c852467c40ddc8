"""Persistence: what the broker acknowledged survives kill -9 and restarts (SQLite store).

Every test runs HarborMQ with `sqlite { mounted_file_path = DATADIR }` through the
persist_broker fixture (conftest.py, a broker_harness.Broker), kills or stops it, restarts
it on the same port and data dir and checks what a reconnecting client gets.
"""

import os
import time

import pytest

import mqttraw
from helpers import both_versions, is_mosquitto, unique_id, wait_for
from persist_load import (check_delivery, collect_until, paho_session_client, raw_client,
                          run_load, session_props)

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ SQLite persistence tests")

N_PUBLISHERS = 4


def nobody_code(version):
    """The PUBACK/PUBREC reason for a message no subscription matched: 0x10 No matching
    subscribers in MQTT 5 (a success code), nothing but success in 3.1.1."""
    return 0x10 if version == 5 else 0


def _persistent_subscriber(broker, version, filt, qos):
    """Connect a persistent session, subscribe, disconnect. Returns the client id."""
    cid = unique_id("psub")
    c = raw_client(broker, version)
    ack = c.connect(cid, clean=(version == 5), props=session_props(version))
    assert ack.reason == 0
    opts = qos if version == 4 else mqttraw.sub_options(qos=qos)
    assert c.subscribe((filt, opts)) == [qos]
    c.disconnect()
    return cid


def _barrier(broker, version=4):
    """A retained QoS 1 publish to an unrelated topic: it must be stored, so its PUBACK comes
    after the commit that holds it, and durability is in sequence order, so every store
    operation submitted before it is durable too. (A plain QoS 1 publish nobody subscribed
    to is not stored and is acknowledged at once: no barrier.)"""
    c = raw_client(broker, version)
    assert c.connect(unique_id("barrier")).reason == 0
    ack = c.publish("barrier/" + unique_id("b"), b"b", qos=1, retain=True)
    assert ack.reason == nobody_code(version), "barrier PUBACK reason %#x" % ack.reason
    c.disconnect()


def _load_then_check(persist_broker, version, qos, end):
    b = persist_broker()
    cid = _persistent_subscriber(b, version, "load/#", qos)
    _barrier(b, version)
    pubs, rc = run_load(b, N_PUBLISHERS, qos, version, duration=1.5, max_acked=15000,
                        end=end)
    if end == "sigterm":
        assert rc == 0, "exit code %d after SIGTERM; log:\n%s" % (rc, b.log_tail())
    acked = sum(len(p.acked_seqs()) for p in pubs)
    refused = sum(p.refused_count() for p in pubs)
    assert refused == 0, "broker refused %d publishes (reason >= 0x80) under load" % refused
    assert acked > 0, "no publish was acknowledged before the broker was ended"
    b.start()
    sub = paho_session_client(b, version, cid, clean=False)
    try:
        assert sub.session_present, "session_present=0 after restart (%s)" % end
        missing = {(p.index, s) for p in pubs for s in p.acked_seqs()}
        looked_at = [0]

        # Incremental: the predicate runs under the client's lock on every message, so a
        # rescan of everything received would make the test (not the broker) quadratic.
        def done(msgs):
            for m in msgs[looked_at[0]:]:
                idx, seq = m.payload.split(b":", 2)[:2]
                missing.discard((int(idx), int(seq)))
            looked_at[0] = len(msgs)
            return not missing

        # delivery speed bound: generous, scales with the amount acknowledged
        msgs = collect_until(sub, done, timeout=10 + acked / 2000.0)
    finally:
        sub.close()
    summary = check_delivery(pubs, msgs, exactly_once=(qos == 2))
    for m in msgs:
        assert m.qos == qos, "delivered with QoS %d, subscribed with %d" % (m.qos, qos)
    print("\n%s v%d qos%d: %r" % (end, version, qos, summary))
    return summary


@both_versions
def test_kill9_under_load_qos1(persist_broker, version):
    _load_then_check(persist_broker, version, 1, "kill9")


@both_versions
def test_kill9_under_load_qos2_exactly_once(persist_broker, version):
    _load_then_check(persist_broker, version, 2, "kill9")


@both_versions
def test_sigterm_under_load_qos1(persist_broker, version):
    _load_then_check(persist_broker, version, 1, "sigterm")


@both_versions
def test_retained_survive_kill9(persist_broker, version):
    b = persist_broker()
    pub = raw_client(b, version)
    assert pub.connect(unique_id("rpub")).reason == 0
    latest = {}
    for i in range(5):
        for v in range(3):
            payload = b"r%d-v%d" % (i, v)
            ack = pub.publish("ret/%d" % i, payload, qos=1, retain=True)
            assert ack.reason == nobody_code(version)
            latest["ret/%d" % i] = payload
    # clear ret/3 with an empty retained payload
    assert pub.publish("ret/3", b"", qos=1, retain=True).reason == nobody_code(version)
    del latest["ret/3"]
    pub.disconnect()
    b.kill9()
    b.start()
    sub = raw_client(b, version)
    assert sub.connect(unique_id("rsub")).reason == 0
    opts = 1 if version == 4 else mqttraw.sub_options(qos=1)
    assert sub.subscribe(("ret/#", opts)) == [1]
    got = sub.publishes(len(latest), timeout=5)
    sub.no_publish(0.5)
    sub.disconnect()
    seen = {}
    for p in got:
        assert p.retain, "retained message %r without the retain flag" % p
        assert p.topic not in seen, "retained topic %s delivered twice" % p.topic
        seen[p.topic] = p.payload
    assert seen == latest, "retained after kill -9: %r, expected %r" % (seen, latest)


@both_versions
def test_subscription_survives_kill9(persist_broker, version):
    b = persist_broker()
    cid = unique_id("ssub")
    sub = raw_client(b, version)
    assert sub.connect(cid, clean=(version == 5), props=session_props(version)).reason == 0
    opts = 1 if version == 4 else mqttraw.sub_options(qos=1)
    assert sub.subscribe(("subs/#", opts)) == [1]
    _barrier(b, version)
    b.kill9()
    sub.close()
    b.start()
    sub = raw_client(b, version)
    ack = sub.connect(cid, clean=False, props=session_props(version))
    assert ack.reason == 0
    assert ack.session_present, "session_present=0 after kill -9"
    pub = raw_client(b, version)
    assert pub.connect(unique_id("spub")).reason == 0
    for i in range(3):
        assert pub.publish("subs/t%d" % i, b"new-%d" % i, qos=1).reason == 0
    got = sub.publishes(3, timeout=5)
    assert [p.payload for p in got] == [b"new-0", b"new-1", b"new-2"]
    assert all(p.qos == 1 for p in got)
    pub.disconnect()
    sub.disconnect()


@both_versions
def test_inflight_resent_with_dup_after_kill9(persist_broker, version):
    window = 100  # mqtt.max_inflight_window in the harness config
    extra = 20
    b = persist_broker()
    cid = unique_id("inf")
    sub = raw_client(b, version)
    assert sub.connect(cid, clean=(version == 5), props=session_props(version)).reason == 0
    opts = 1 if version == 4 else mqttraw.sub_options(qos=1)
    assert sub.subscribe(("inf/#", opts)) == [1]
    sub.auto_ack = False
    pub = raw_client(b, version)
    assert pub.connect(unique_id("ipub")).reason == 0
    total = window + extra
    for i in range(total):
        assert pub.publish("inf/a", b"m%03d" % i, qos=1).reason == 0
    pub.disconnect()
    first = sub.publishes(window, timeout=5)
    assert [p.payload for p in first] == [b"m%03d" % i for i in range(window)]
    assert not any(p.dup for p in first)
    sub.no_publish(0.3)  # the window is full: nothing more before an acknowledgement
    _barrier(b, version)  # the inflight state (packet ids) is committed
    b.kill9()
    sub.close()
    b.start()
    sub = raw_client(b, version)
    sub.auto_ack = False
    ack = sub.connect(cid, clean=False, props=session_props(version))
    assert ack.reason == 0 and ack.session_present
    again = sub.publishes(window, timeout=5)
    assert [p.payload for p in again] == [p.payload for p in first], \
        "resent inflight messages differ or out of order"
    assert [p.pid for p in again] == [p.pid for p in first], "packet ids changed"
    assert all(p.dup for p in again), "resent inflight messages without DUP=1: %r" % [
        p for p in again if not p.dup][:3]
    for p in again:
        sub.send(mqttraw.ack_packet(mqttraw.PUBACK, p.pid, version))
    rest = sub.publishes(extra, timeout=5)
    assert [p.payload for p in rest] == [b"m%03d" % i for i in range(window, total)]
    assert not any(p.dup for p in rest)
    for p in rest:
        sub.send(mqttraw.ack_packet(mqttraw.PUBACK, p.pid, version))
    sub.no_publish(0.5)
    sub.disconnect()


@both_versions
def test_qos2_inbound_state_survives_kill9(persist_broker, version):
    b = persist_broker()
    sub_cid = _persistent_subscriber(b, version, "q2in/#", 2)
    pub_cid = unique_id("q2pub")
    pub = raw_client(b, version)
    assert pub.connect(pub_cid, clean=(version == 5), props=session_props(version)).reason == 0
    pub.send(mqttraw.publish_packet("q2in/x", b"once", qos=2, pid=7, version=version))
    rec = pub.wait_for(mqttraw.PUBREC, 5, pid=7)
    assert rec.reason == 0, "PUBREC reason %#x" % rec.reason
    # Under the default ack policy PUBREC follows the commit of the message and its
    # QoS 2 state; no further wait is needed.
    b.kill9()
    pub.close()
    b.start()
    pub = raw_client(b, version)
    ack = pub.connect(pub_cid, clean=False, props=session_props(version))
    assert ack.reason == 0 and ack.session_present, "publisher session lost: %r" % ack
    pub.send(mqttraw.publish_packet("q2in/x", b"once", qos=2, pid=7, dup=True,
                                    version=version))
    rec = pub.wait_for(mqttraw.PUBREC, 5, pid=7)
    assert rec.reason == 0, "PUBREC reason %#x after resend" % rec.reason
    pub.send(mqttraw.ack_packet(mqttraw.PUBREL, 7, version))
    comp = pub.wait_for(mqttraw.PUBCOMP, 5, pid=7)
    assert comp.reason == 0, "PUBCOMP reason %#x" % comp.reason
    pub.disconnect()

    sub = raw_client(b, version)
    ack = sub.connect(sub_cid, clean=False, props=session_props(version))
    assert ack.reason == 0 and ack.session_present
    got = sub.publishes(1, timeout=5)
    assert got[0].payload == b"once" and got[0].qos == 2
    # a second delivery would be a PUBLISH with a different packet id (or a non-DUP one)
    deadline = time.monotonic() + 1.0
    extra = []
    while time.monotonic() < deadline:
        p = sub.recv(timeout=max(0.0, deadline - time.monotonic()))
        if p is None:
            break
        if p.type == mqttraw.PUBLISH:
            extra.append(p)
    sub.disconnect()
    assert not extra, "QoS 2 message delivered more than once: %r + %r" % (got, extra)


def test_session_expiry_applied_on_restore(persist_broker):
    b = persist_broker()
    short_cid, long_cid = unique_id("exp2"), unique_id("exp60")
    for cid, expiry in ((short_cid, 2), (long_cid, 60)):
        c = raw_client(b, 5)
        assert c.connect(cid, clean=True, props={mqttraw.P_SESSION_EXPIRY: expiry}).reason == 0
        assert c.subscribe(("exp/#", mqttraw.sub_options(qos=1))) == [1]
        c.disconnect()
    disconnected_at = time.monotonic()
    # wait until the broker has seen both disconnects (their last_seen is stored)
    _barrier(b, 5)
    b.stop()
    wait_for(lambda: time.monotonic() - disconnected_at > 2.5, timeout=5,
             what="session expiry of 2 s to pass while the broker is down")
    b.start()
    c = raw_client(b, 5)
    ack = c.connect(short_cid, clean=False, props={mqttraw.P_SESSION_EXPIRY: 2})
    assert ack.reason == 0
    assert not ack.session_present, "a session with expiry 2 s was restored after > 2 s"
    c.disconnect()
    c = raw_client(b, 5)
    ack = c.connect(long_cid, clean=False, props={mqttraw.P_SESSION_EXPIRY: 60})
    assert ack.reason == 0
    assert ack.session_present, "a session with expiry 60 s was not restored"
    c.disconnect()


def test_corrupt_database_refused(persist_broker):
    b = persist_broker(start=False)
    garbage = (b"this is not a SQLite database \x00\xff" * 300)[:8192]
    with open(b.db_path, "wb") as f:
        f.write(garbage)
    b.spawn()
    rc = b.wait_exit(timeout=15)
    log = b.log_text()
    assert rc != 0, "broker started on a corrupt database; log:\n%s" % b.log_tail()
    assert b.db_path in log or os.path.realpath(b.db_path) in log, \
        "startup error does not name %s; log:\n%s" % (b.db_path, b.log_tail())
    with open(b.db_path, "rb") as f:
        assert f.read() == garbage, "the corrupt database file was modified"


class _Qos2Receiver:
    """Application view of a raw QoS 2 subscriber that keeps its receiver state across
    reconnects: a PUBLISH whose packet id awaits PUBREL is a retransmission, not a new
    delivery (auto_ack answers PUBREC / PUBCOMP)."""

    def __init__(self):
        self.awaiting_rel = set()
        self.delivered = []

    def feed(self, p):
        if p.type == mqttraw.PUBLISH:
            if p.qos == 2 and p.pid in self.awaiting_rel:
                return
            self.delivered.append(p)
            if p.qos == 2:
                self.awaiting_rel.add(p.pid)
        elif p.type == mqttraw.PUBREL:
            self.awaiting_rel.discard(p.pid)

    def drain(self, client, quiet):
        """Read until nothing arrived for `quiet` seconds (absence check, bounded)."""
        for p in client.pending:
            self.feed(p)
        client.pending = []
        limit = time.monotonic() + 10
        while time.monotonic() < limit:
            try:
                p = client.recv(timeout=quiet)
            except mqttraw.Closed:
                return
            if p is None:
                return
            self.feed(p)


@both_versions
def test_qos2_inbound_state_survives_kill9_online_subscriber(persist_broker, version):
    """As above, but the subscriber is connected, so the broker forwards the message when
    the PUBLISH arrives; the DUP resend after the restart must not be forwarded again."""
    b = persist_broker()
    sub_cid = unique_id("q2on")
    rx = _Qos2Receiver()
    sub = raw_client(b, version)
    assert sub.connect(sub_cid, clean=(version == 5), props=session_props(version)).reason == 0
    opts = 2 if version == 4 else mqttraw.sub_options(qos=2)
    assert sub.subscribe(("q2on/#", opts)) == [2]
    pub_cid = unique_id("q2onpub")
    pub = raw_client(b, version)
    assert pub.connect(pub_cid, clean=(version == 5), props=session_props(version)).reason == 0
    pub.send(mqttraw.publish_packet("q2on/x", b"once", qos=2, pid=7, version=version))
    rec = pub.wait_for(mqttraw.PUBREC, 5, pid=7)
    assert rec.reason == 0, "PUBREC reason %#x" % rec.reason
    first = sub.wait_for(mqttraw.PUBLISH, 5)
    rx.feed(first)
    rx.drain(sub, quiet=0.3)
    _barrier(b, version)
    b.kill9()
    sub.close()
    pub.close()
    b.start()
    sub = raw_client(b, version)
    ack = sub.connect(sub_cid, clean=False, props=session_props(version))
    assert ack.reason == 0 and ack.session_present
    rx.drain(sub, quiet=0.3)
    pub = raw_client(b, version)
    ack = pub.connect(pub_cid, clean=False, props=session_props(version))
    assert ack.reason == 0 and ack.session_present, "publisher session lost: %r" % ack
    pub.send(mqttraw.publish_packet("q2on/x", b"once", qos=2, pid=7, dup=True,
                                    version=version))
    rec = pub.wait_for(mqttraw.PUBREC, 5, pid=7)
    assert rec.reason == 0, "PUBREC reason %#x after resend" % rec.reason
    pub.send(mqttraw.ack_packet(mqttraw.PUBREL, 7, version))
    assert pub.wait_for(mqttraw.PUBCOMP, 5, pid=7).reason == 0
    pub.disconnect()
    rx.drain(sub, quiet=1.0)
    sub.disconnect()
    assert [p.payload for p in rx.delivered] == [b"once"], \
        "QoS 2 message delivered %d times: %r" % (len(rx.delivered), rx.delivered)
