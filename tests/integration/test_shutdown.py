"""Shutdown: SIGTERM stops the broker promptly with exit code 0 and closes client sockets."""

import time

import pytest

import mqttraw as m

pytestmark = pytest.mark.harbormq_only


def test_sigterm_with_clients_connected_exits_0_and_closes_sockets(make_broker, open_client):
    broker = make_broker()
    clients = [open_client(broker, 4), open_client(broker, 5), open_client(broker, 3)]
    for c in clients:
        c.subscribe([("sd/#", 1)])
    # one client in the middle of a QoS 2 flow (PUBREC received, no PUBREL sent)
    mid = open_client(broker, 5)
    mid.send(m.publish_packet("sd/x", b"half", qos=2, pid=5, version=5))
    mid.wait_for(m.PUBREC, pid=5)
    t0 = time.monotonic()
    rc = broker.stop(timeout=10)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < 3.0, "SIGTERM took %.2fs" % elapsed
    for c in clients + [mid]:
        got = c.wait_closed(2)
        for p in got:
            # 5.0: a DISCONNECT before the close must say Server shutting down (0x8B)
            if p.type == m.DISCONNECT:
                assert c.version == 5 and p.reason == 0x8B, p


def test_sigterm_idle_exits_0_promptly(make_broker):
    broker = make_broker()
    t0 = time.monotonic()
    assert broker.stop(timeout=10) == 0
    assert time.monotonic() - t0 < 2.0


def test_port_reusable_after_restart(make_broker, open_client):
    """restart() on the same port works right after a clean stop (SO_REUSEADDR)."""
    broker = make_broker()
    open_client(broker, 4)
    broker.restart()
    c = open_client(broker, 4)
    assert c.is_open()
