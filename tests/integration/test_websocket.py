"""MQTT over WebSocket (listeners.ws; MQTT §6 [MQTT-6.0.0-1..4], RFC 6455): real paho-mqtt
clients over WebSocket talking to TCP clients in both directions, and raw-socket checks of
the upgrade (refusals, the connect timeout) and of the frame stream (masking, opcodes,
fragmentation, Ping/Close)."""

import base64
import os
import re
import socket
import struct
import time

import pytest

import mqttraw as m
from helpers import (HOST, PahoClient, both_versions, exchange_both_ways, free_port, is_mosquitto,
                     unique_id, wait_for)

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's listeners.ws")

WS_PATH = "/mqtt"
BINARY, TEXT, CONTINUATION, CLOSE, PING, PONG = 0x2, 0x1, 0x0, 0x8, 0x9, 0xA


@pytest.fixture
def ws_broker(make_broker):
    """A broker with listeners.ws on a free port (broker.ws_port), packets up to 2 MB."""
    ws_port = free_port()
    b = make_broker(max_packet_size="2MB",
                    extra_conf='listeners.ws { bind = "%s:%d%s" }\n' % (HOST, ws_port, WS_PATH))
    b.ws_port = ws_port
    return b


# -- a raw WebSocket client

def upgrade_request(port, path=WS_PATH, method="GET", key=None, extra="", upgrade=True,
                    protocol="mqtt"):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (HOST, port)]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key:
        lines.append("Sec-WebSocket-Key: " + key)
    lines.append("Sec-WebSocket-Version: 13")
    if protocol:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class RawWs:
    """A blocking WebSocket client socket: the handshake, then frames."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("nothing from the broker in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            raise m.Closed()
        self.buf += data

    def http_response(self, request, timeout=5.0):
        """Sends `request`; returns (status, head text) of the response head."""
        self.sock.sendall(request)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end]).decode()
        del self.buf[:end]
        return int(head.split(" ", 2)[1]), head

    def upgrade(self, **kw):
        status, head = self.http_response(upgrade_request(self.port, **kw))
        assert status == 101, head
        return head

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next server frame; raises m.Closed on EOF."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                assert not b1 & 0x80, "a server frame must not be masked"
                n, at = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, at = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (b1 & 0x7F) < 126 or at > 2:
                    if len(self.buf) >= at + n:
                        payload = bytes(self.buf[at:at + n])
                        del self.buf[:at + n]
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            self._fill(deadline)

    def expect_close(self, code, timeout=5.0):
        """The next frames end with a Close of `code`, then the broker closes the socket."""
        deadline = time.monotonic() + timeout
        while True:
            _, op, payload = self.recv_frame(max(0.1, deadline - time.monotonic()))
            if op == CLOSE:
                break
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        assert got == code, "Close %r, expected %d (%r)" % (got, code, payload)
        self.expect_eof(timeout)
        return payload

    def expect_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with pytest.raises(m.Closed):
            while True:
                self._fill(deadline)

    def close(self):
        self.sock.close()


class WsMqttClient(m.RawClient):
    """mqttraw.RawClient over a WebSocket: each send() is one masked binary frame (or
    `split` frames of a fragmented message); binary payload goes into the MQTT stream."""

    def __init__(self, port, version=4, timeout=5.0):
        self.ws = RawWs(port, timeout)
        self.ws.upgrade()
        self.host, self.port, self.version = HOST, port, version
        self.sock = self.ws.sock
        self.buf = bytearray()
        self.pending = []
        self.auto_ack = True
        self.closed = False
        self._next_pid = 0
        self.connack = None
        self.frames = []  # control frames received (opcode, payload)

    def send(self, data):
        self.ws.send(frame(BINARY, data))

    def _read_socket_packet(self, deadline):
        while True:
            p = self._try_parse()
            if p is not None:
                self._auto_ack(p)
                return p
            if self.closed:
                raise m.Closed()
            if time.monotonic() >= deadline:
                return None
            try:
                _, op, payload = self.ws.recv_frame(deadline - time.monotonic())
            except AssertionError:
                return None
            except (m.Closed, OSError):
                self.closed = True
                raise m.Closed()
            if op in (BINARY, CONTINUATION):
                self.buf += payload
            else:
                self.frames.append((op, payload))


# -- real clients: paho-mqtt over WebSocket and TCP

def ws_client(broker, version, **kw):
    return PahoClient(broker, version, transport="websockets", port=broker.ws_port, **kw)


@both_versions
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_websocket_and_tcp_clients_exchange_messages(ws_broker, version, qos):
    """A WebSocket subscriber gets a TCP client's message and the other way round."""
    ws = ws_client(ws_broker, version)
    tcp = PahoClient(ws_broker, version)
    try:
        topic = "ws/%s/%d" % (unique_id(), qos)
        assert ws.subscribe(topic + "/to-ws", qos) == [qos]
        assert tcp.subscribe(topic + "/to-tcp", qos) == [qos]
        for i in range(3):
            tcp.publish(topic + "/to-ws", b"from tcp %d" % i, qos)
            ws.publish(topic + "/to-tcp", b"from ws %d" % i, qos)
        got_ws = ws.expect(3)
        got_tcp = tcp.expect(3)
        assert [x.payload for x in got_ws] == [b"from tcp %d" % i for i in range(3)]
        assert [x.payload for x in got_tcp] == [b"from ws %d" % i for i in range(3)]
        assert {x.qos for x in got_ws} == {qos} and {x.qos for x in got_tcp} == {qos}
    finally:
        ws.close()
        tcp.close()


@both_versions
def test_one_megabyte_payload_both_ways(ws_broker, version):
    """A 1 MB PUBLISH arrives in many frames (in) and is sent in 64 KiB frames (out)."""
    ws = ws_client(ws_broker, version)
    tcp = PahoClient(ws_broker, version)
    try:
        exchange_both_ways(ws, tcp, os.urandom(1024 * 1024))
    finally:
        ws.close()
        tcp.close()


def test_retained_messages_cross_transports(ws_broker):
    tcp = PahoClient(ws_broker, 4)
    ws = ws_client(ws_broker, 5)
    try:
        tcp.publish("ret/from-tcp", b"kept by tcp", 1, retain=True)
        ws.publish("ret/from-ws", b"kept by ws", 1, retain=True)
        later_ws = ws_client(ws_broker, 4)
        later_tcp = PahoClient(ws_broker, 5)
        try:
            later_ws.subscribe("ret/from-tcp", 1)
            later_tcp.subscribe("ret/from-ws", 1)
            a = later_ws.expect(1)[0]
            b = later_tcp.expect(1)[0]
            assert (a.payload, a.retain) == (b"kept by tcp", True)
            assert (b.payload, b.retain) == (b"kept by ws", True)
        finally:
            later_ws.close()
            later_tcp.close()
    finally:
        ws.close()
        tcp.close()


def test_port_zero_is_reported_in_the_ready_line(make_broker):
    """listeners.ws on port 0: the ready line names the port actually bound."""
    b = make_broker(extra_conf='listeners.ws { bind = "%s:0" }\n' % HOST)  # no path: /mqtt
    found = wait_for(lambda: re.search(r"ready in \d+ ms: listening on tcp \S+, ws %s:(\d+)/mqtt"
                                       % re.escape(HOST), b.log_text()), what="ready line")
    b.ws_port = int(found.group(1))
    assert b.ws_port != 0
    c = ws_client(b, 4)
    c.close()


# -- the upgrade

@pytest.mark.parametrize("request_kw, status", [
    ({"path": "/other"}, 404),
    ({"key": ""}, 400),
    ({"method": "POST"}, 405),
    ({"upgrade": False}, 426),
    ({"protocol": "chat"}, 400),
], ids=["wrong-path", "no-key", "not-get", "no-upgrade", "no-mqtt-subprotocol"])
def test_bad_upgrades_are_refused_and_closed(ws_broker, open_client, request_kw, status):
    bystander = open_client(ws_broker, 4)
    ws = RawWs(ws_broker.ws_port)
    got, head = ws.http_response(upgrade_request(ws_broker.ws_port, **request_kw))
    assert got == status, head
    assert "Connection: close" in head or "Connection: Upgrade, close" in head, head
    ws.expect_eof()
    wait_for(lambda: "WebSocket upgrade refused with %d" % status in ws_broker.log_text(),
             what="the refusal in the log")
    assert bystander.is_open()


def test_upgrade_with_query_string_and_no_subprotocol(ws_broker):
    ws = RawWs(ws_broker.ws_port)
    head = ws.upgrade(path=WS_PATH + "?client=1", protocol=None)
    assert "Sec-WebSocket-Protocol" not in head
    key_line = [ln for ln in head.split("\r\n") if ln.startswith("Sec-WebSocket-Accept: ")]
    assert len(key_line) == 1


def test_upgrade_head_never_finished_is_closed_by_the_connect_timeout(make_broker, open_client):
    ws_port = free_port()
    b = make_broker(connect_timeout="1s",
                    extra_conf='listeners.ws { bind = "%s:%d" }\n' % (HOST, ws_port))
    bystander = open_client(b, 4)
    ws = RawWs(ws_port)
    ws.send(upgrade_request(ws_port)[:40])  # part of the request line and Host
    started = time.monotonic()
    ws.expect_eof(timeout=5)
    assert time.monotonic() - started < 4
    wait_for(lambda: "WebSocket upgrade not complete" in b.log_text(), what="the close logged")
    assert bystander.is_open()


def test_oversized_upgrade_head_is_refused_431(ws_broker):
    ws = RawWs(ws_broker.ws_port)
    filler = "X-Filler: %s\r\n" % ("a" * 9000)
    got, head = ws.http_response(upgrade_request(ws_broker.ws_port, extra=filler))
    assert got == 431, head
    ws.expect_eof()


# -- the frame stream

@both_versions
def test_raw_client_connects_over_websocket(ws_broker, version):
    c = WsMqttClient(ws_broker.ws_port, version)
    assert c.connect(unique_id()).reason == 0
    assert c.subscribe([("raw/t", 1)]) == [1]
    c.publish("raw/t", b"hello", qos=1)
    assert c.publishes(1)[0].payload == b"hello"
    c.disconnect_and_wait()


def test_unmasked_frame_is_closed_with_1002(ws_broker, open_client):
    bystander = open_client(ws_broker, 4)
    c = WsMqttClient(ws_broker.ws_port)
    c.ws.send(frame(BINARY, m.connect_packet(unique_id()), mask=False))
    c.ws.expect_close(1002)
    wait_for(lambda: "unmasked client frame" in ws_broker.log_text(), what="the reason logged")
    assert bystander.is_open()


def test_text_frame_is_closed_with_1003(ws_broker):
    """[MQTT-6.0.0-1]: data in anything but a binary frame closes the connection."""
    c = WsMqttClient(ws_broker.ws_port)
    assert c.connect(unique_id()).reason == 0
    c.ws.send(frame(TEXT, m.pingreq_packet()))
    c.ws.expect_close(1003)


def test_garbage_after_the_upgrade_is_closed(ws_broker):
    c = WsMqttClient(ws_broker.ws_port)
    c.ws.send(b"\x8f\x80garbage")  # unknown opcode 0xF
    c.ws.expect_close(1002)


def test_ping_is_answered_with_pong_before_and_after_connect(ws_broker):
    c = WsMqttClient(ws_broker.ws_port)
    c.ws.send(frame(PING, b"before"))
    assert c.ws.recv_frame()[1:] == (PONG, b"before")
    assert c.connect(unique_id()).reason == 0
    c.ws.send(frame(PING, b"after"))
    c.ws.send(frame(PING))
    assert c.ws.recv_frame()[1:] == (PONG, b"after")
    assert c.ws.recv_frame()[1:] == (PONG, b"")
    assert c.is_open()


def test_client_close_is_echoed_and_the_will_is_published(ws_broker, open_client):
    """A Close without DISCONNECT is an abnormal end for MQTT: the will goes out."""
    watcher = open_client(ws_broker, 4)
    assert watcher.subscribe([("will/ws", 0)]) == [0]
    c = WsMqttClient(ws_broker.ws_port)
    assert c.connect(unique_id(), will=dict(topic="will/ws", payload=b"gone")).reason == 0
    c.ws.send(frame(CLOSE, struct.pack("!H", 1000) + b"bye"))
    c.ws.expect_close(1000)
    assert watcher.publishes(1)[0].payload == b"gone"


def test_disconnect_then_close_in_one_write_is_a_normal_disconnect(ws_broker, open_client):
    watcher = open_client(ws_broker, 4)
    assert watcher.subscribe([("will/ws2", 0)]) == [0]
    c = WsMqttClient(ws_broker.ws_port)
    assert c.connect(unique_id(), will=dict(topic="will/ws2", payload=b"gone")).reason == 0
    c.ws.send(frame(BINARY, m.disconnect_packet()) + frame(CLOSE, struct.pack("!H", 1001)))
    c.ws.expect_close(1001)
    watcher.no_publish(0.5)


def test_fragmented_frames_split_packets_and_packets_sharing_a_frame(ws_broker):
    """[MQTT-6.0.0-2] [MQTT-6.0.0-3]: frame boundaries mean nothing to the MQTT stream."""
    c = WsMqttClient(ws_broker.ws_port, 5)
    connect = m.connect_packet(unique_id(), 5)
    # CONNECT split over a fragmented message, a Ping between its fragments.
    c.ws.send(frame(BINARY, connect[:3], fin=False))
    c.ws.send(frame(CONTINUATION, connect[3:7], fin=False))
    c.ws.send(frame(PING, b"mid"))
    c.ws.send(frame(CONTINUATION, connect[7:], fin=True))
    assert c.wait_for(m.CONNACK).reason == 0
    assert c.frames == [(PONG, b"mid")]
    # SUBSCRIBE and two PUBLISHes in one frame; then one PUBLISH in a frame per byte.
    two = m.subscribe_packet(1, [("frag/t", m.sub_options(1))], 5)
    two += m.publish_packet("frag/t", b"one", 1, pid=2, version=5)
    two += m.publish_packet("frag/t", b"two", 0, version=5)
    c.ws.send(frame(BINARY, two))
    assert c.wait_for(m.SUBACK, pid=1).reasons == [1]
    split = m.publish_packet("frag/t", b"three", 0, version=5)
    for i in range(len(split)):
        c.ws.send(frame(BINARY, split[i:i + 1]))
    got = c.publishes(3)
    assert [p.payload for p in got] == [b"one", b"two", b"three"]
    assert c.is_open()


def test_shutdown_sends_close_1000(make_broker):
    ws_port = free_port()
    b = make_broker(extra_conf='listeners.ws { bind = "%s:%d" }\n' % (HOST, ws_port))
    c = WsMqttClient(ws_port, 5)
    assert c.connect(unique_id()).reason == 0
    b.stop()
    got = c.wait_closed()
    assert [p.type for p in got] == [m.DISCONNECT]
    assert c.frames and c.frames[-1][0] == CLOSE
    assert struct.unpack("!H", c.frames[-1][1][:2])[0] == 1000
