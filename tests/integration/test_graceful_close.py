"""A connection the broker closes on purpose is closed gracefully (runtime/lingerer.hpp):
its last packet (here DISCONNECT 0x93) reaches a client that still has data in flight to
the broker and answers what it reads. Closing with the client's input unread makes the
kernel send RST: the client's next write fails (broken pipe) or its unread DISCONNECT is
discarded (Paho's MQTT 5 interoperability test_flow_control2 is this case)."""

import time

import pytest

import mqttraw as m

pytestmark = pytest.mark.harbormq_only

RECEIVE_MAXIMUM = 5


def test_disconnect_reaches_a_client_that_kept_sending(make_broker):
    broker = make_broker(max_awaiting_rel=RECEIVE_MAXIMUM)
    c = m.RawClient(broker.host, broker.port, version=5)
    c.connect("flood")
    assert c.connack.reason == m.RC_SUCCESS, c.connack
    assert not c.pending, c.pending  # CONNACK came first
    # One more unacknowledged QoS 2 PUBLISH than the broker's Receive Maximum, written
    # before reading anything (as test_flow_control2 does), then more traffic behind it.
    burst = b"".join(m.publish_packet("gc/t", b"x" * 100, qos=2, pid=i, version=5)
                     for i in range(1, RECEIVE_MAXIMUM + 2))
    c.send(burst + m.pingreq_packet() * 50)
    disconnect = None
    deadline = time.monotonic() + 10
    while disconnect is None and time.monotonic() < deadline:
        try:
            p = c.recv(timeout=max(0.01, deadline - time.monotonic()))
        except m.Closed:  # closed or reset before a DISCONNECT was read
            break
        if p is None:
            break
        if p.type == m.PUBREC:  # answer it, as a client does
            # The broker reads (and discards) until we close: no broken pipe here (send
            # raises, unlike RawClient's auto_ack).
            c.send(m.ack_packet(m.PUBREL, p.pid, version=5))
        elif p.type == m.DISCONNECT:
            disconnect = p
    c.close()
    assert disconnect is not None, "no DISCONNECT read (connection reset or closed first)"
    assert disconnect.reason == m.RC_RECEIVE_MAXIMUM_EXCEEDED, \
        "DISCONNECT reason %#x" % disconnect.reason
