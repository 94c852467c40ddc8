"""A connection the broker closes on purpose is closed gracefully (runtime/lingerer.hpp):
its last packet (here DISCONNECT 0x93) reaches a client that still has data in flight to
the broker and answers what it reads. Closing with the client's input unread makes the
kernel send RST: the client's next write fails (broken pipe) or its unread DISCONNECT is
discarded (Paho's MQTT 5 interoperability test_flow_control2 is this case)."""

import socket
import time

import pytest

import mqttraw as m

pytestmark = pytest.mark.harbormq_only

RECEIVE_MAXIMUM = 5


def read_packets(sock, buf, deadline):
    """Whole packets from `buf` + the socket until it closes or the deadline; raises
    ConnectionResetError if the broker reset the connection."""
    out = []
    while time.monotonic() < deadline:
        while True:
            if len(buf) < 2:
                break
            mult, length, i = 1, 0, 1
            while i < len(buf) and buf[i] & 0x80:
                length += (buf[i] & 0x7F) * mult
                mult *= 128
                i += 1
            if i >= len(buf):
                break
            length += (buf[i] & 0x7F) * mult
            i += 1
            if len(buf) < i + length:
                break
            out.append((buf[0] >> 4, bytes(buf[i:i + length])))
            del buf[:i + length]
        if out:
            return out
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            return out
        buf += data
    return out


def test_disconnect_reaches_a_client_that_kept_sending(make_broker):
    broker = make_broker(max_awaiting_rel=RECEIVE_MAXIMUM)
    s = socket.create_connection((broker.host, broker.port), timeout=5)
    s.sendall(m.connect_packet("flood", version=5))
    buf = bytearray()
    deadline = time.monotonic() + 10
    first = read_packets(s, buf, deadline)
    assert first and first[0][0] == 2, first  # CONNACK
    # One more unacknowledged QoS 2 PUBLISH than the broker's Receive Maximum, written
    # before reading anything (as test_flow_control2 does), then more traffic behind it.
    burst = b"".join(m.publish_packet("gc/t", b"x" * 100, qos=2, pid=i, version=5)
                     for i in range(1, RECEIVE_MAXIMUM + 2))
    s.sendall(burst + m.pingreq_packet() * 50)
    disconnect = None
    while disconnect is None and time.monotonic() < deadline:
        packets = read_packets(s, buf, deadline)
        if not packets:
            break
        for ptype, body in packets:
            if ptype == 5:  # PUBREC: answer it, as a client does
                pid = int.from_bytes(body[:2], "big")
                # The broker reads (and discards) until we close: no broken pipe here.
                s.sendall(m.ack_packet(6, pid, version=5))
            elif ptype == 14:
                disconnect = body
                break
    s.close()
    assert disconnect is not None, "no DISCONNECT read (connection reset or closed first)"
    assert disconnect[0] == 0x93, "DISCONNECT reason %#x" % disconnect[0]
