"""A tiny hand-rolled MQTT 3.1 / 3.1.1 / 5.0 packet builder and socket client.

Used by the integration tests when paho-mqtt would hide what we need to see or do:
sending malformed bytes, not acknowledging PUBLISH packets, inspecting DUP flags,
observing DISCONNECT reason codes and the moment a socket is closed.

Everything here is blocking and bounded by explicit deadlines.
"""

import select
import socket
import struct
import time

# Packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5 property identifiers
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT,
    0x11: _U32, 0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE,
    0x18: _U32, 0x19: _BYTE, 0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16,
    0x22: _U16, 0x23: _U16, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _U32,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}
# Properties that may legally appear more than once; decoded into lists.
MULTI_PROPERTIES = (P_SUBSCRIPTION_ID, P_USER_PROPERTY)

# A few reason codes the tests refer to by name.
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_PACKET_TOO_LARGE = 0x95


# ---------------------------------------------------------------- encoding

def varint(n):
    """Variable Byte Integer [MQTT-1.5.5]."""
    if n < 0 or n > 268435455:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def mqtt_bytes(data):
    """Two-byte length prefixed binary data."""
    return u16(len(data)) + data


def mqtt_str(s):
    """UTF-8 string; a bytes argument is sent verbatim (used for invalid UTF-8)."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    return mqtt_bytes(s)


def encode_property(pid, value):
    kind = PROPERTY_TYPES[pid]
    out = varint(pid)
    if kind == _BYTE:
        out += bytes([value])
    elif kind == _U16:
        out += u16(value)
    elif kind == _U32:
        out += u32(value)
    elif kind == _VARINT:
        out += varint(value)
    elif kind == _STR:
        out += mqtt_str(value)
    elif kind == _BIN:
        out += mqtt_bytes(value)
    else:
        out += mqtt_str(value[0]) + mqtt_str(value[1])
    return out


def encode_properties(props):
    """props: None, a dict {id: value or list of values}, or a list of (id, value) pairs
    (the list form allows deliberately duplicated properties)."""
    if not props:
        return varint(0)
    pairs = []
    if isinstance(props, dict):
        for pid, value in props.items():
            if pid in MULTI_PROPERTIES and isinstance(value, list):
                pairs.extend((pid, v) for v in value)
            else:
                pairs.append((pid, value))
    else:
        pairs = list(props)
    body = b"".join(encode_property(pid, v) for pid, v in pairs)
    return varint(len(body)) + body


def packet(ptype, flags, body):
    """Fixed header + body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + body


def connect_packet(client_id="", version=4, clean=True, keepalive=60, props=None,
                   will=None, username=None, password=None, protocol_name=None,
                   reserved_flag=False):
    """will: dict(topic=, payload=, qos=0, retain=False, props=None)."""
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == 3 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    if reserved_flag:
        flags |= 0x01
    body = mqtt_str(protocol_name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        body += encode_properties(props)
    body += mqtt_str(client_id)
    if will is not None:
        if version == 5:
            body += encode_properties(will.get("props"))
        body += mqtt_str(will["topic"])
        payload = will.get("payload", b"")
        body += mqtt_bytes(payload.encode() if isinstance(payload, str) else payload)
    if username is not None:
        body += mqtt_str(username)
    if password is not None:
        body += mqtt_bytes(password.encode() if isinstance(password, str) else password)
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
                   version=4, props=None):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = mqtt_str(topic)
    if qos > 0 or pid is not None:
        body += u16(pid if pid is not None else 1)
    if version == 5:
        body += encode_properties(props)
    return packet(PUBLISH, flags, body + payload)


def ack_packet(ptype, pid, version=4, reason=None, props=None):
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    flags = 0x02 if ptype == PUBREL else 0
    body = u16(pid)
    if version == 5 and (reason is not None or props):
        body += bytes([reason or 0])
        if props:
            body += encode_properties(props)
    return packet(ptype, flags, body)


def subscribe_packet(pid, filters, version=4, props=None):
    """filters: list of (filter, options) where options is the QoS for 3.1.1 or the full
    subscription options byte for 5.0 (see sub_options())."""
    body = u16(pid)
    if version == 5:
        body += encode_properties(props)
    for flt, opts in filters:
        body += mqtt_str(flt) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | \
        (retain_handling << 4)


def unsubscribe_packet(pid, filters, version=4, props=None):
    body = u16(pid)
    if version == 5:
        body += encode_properties(props)
    for flt in filters:
        body += mqtt_str(flt)
    return packet(UNSUBSCRIBE, 0x02, body)


def disconnect_packet(version=4, reason=None, props=None):
    body = b""
    if version == 5 and (reason is not None or props):
        body = bytes([reason or 0])
        if props:
            body += encode_properties(props)
    return packet(DISCONNECT, 0, body)


def pingreq_packet():
    return packet(PINGREQ, 0, b"")


# ---------------------------------------------------------------- decoding

class Packet:
    """A decoded packet from the server. Unused fields stay None."""

    def __init__(self, ptype, flags):
        self.type = ptype
        self.flags = flags
        self.pid = None
        self.reason = None
        self.reasons = None
        self.props = {}
        self.session_present = None
        self.topic = None
        self.payload = None
        self.qos = None
        self.dup = None
        self.retain = None
        self.raw = b""

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    def __repr__(self):
        if self.type == PUBLISH:
            return "<PUBLISH %r q%d pid=%s dup=%d ret=%d %r props=%r>" % (
                self.topic, self.qos, self.pid, self.dup, self.retain, self.payload[:40],
                self.props)
        return "<%s pid=%s reason=%s reasons=%s sp=%s props=%r>" % (
            self.name, self.pid, self.reason, self.reasons, self.session_present, self.props)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u16(self):
        v = struct.unpack_from("!H", self.data, self.pos)[0]
        self.pos += 2
        return v

    def u32(self):
        v = struct.unpack_from("!I", self.data, self.pos)[0]
        self.pos += 4
        return v

    def varint(self):
        mult, value = 1, 0
        for _ in range(4):
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128
        raise ValueError("malformed varint")

    def binary(self):
        n = self.u16()
        v = self.data[self.pos:self.pos + n]
        if len(v) != n:
            raise ValueError("truncated")
        self.pos += n
        return bytes(v)

    def string(self):
        return self.binary().decode("utf-8")

    def rest(self):
        v = bytes(self.data[self.pos:])
        self.pos = len(self.data)
        return v

    def properties(self):
        n = self.varint()
        end = self.pos + n
        props = {}
        while self.pos < end:
            pid = self.varint()
            kind = PROPERTY_TYPES[pid]
            if kind == _BYTE:
                v = self.byte()
            elif kind == _U16:
                v = self.u16()
            elif kind == _U32:
                v = self.u32()
            elif kind == _VARINT:
                v = self.varint()
            elif kind == _STR:
                v = self.string()
            elif kind == _BIN:
                v = self.binary()
            else:
                v = (self.string(), self.string())
            if pid in MULTI_PROPERTIES:
                props.setdefault(pid, []).append(v)
            else:
                if pid in props:
                    raise ValueError("server sent duplicate property %#x" % pid)
                props[pid] = v
        return props


def decode_packet(first, body, version):
    p = Packet(first >> 4, first & 0x0F)
    p.raw = bytes(body)
    r = _Reader(body)
    t = p.type
    if t == CONNACK:
        p.session_present = bool(r.byte() & 0x01)
        p.reason = r.byte()
        if version == 5 and r.remaining():
            p.props = r.properties()
    elif t == PUBLISH:
        p.qos = (p.flags >> 1) & 0x03
        p.dup = bool(p.flags & 0x08)
        p.retain = bool(p.flags & 0x01)
        p.topic = r.string()
        if p.qos:
            p.pid = r.u16()
        if version == 5:
            p.props = r.properties()
        p.payload = r.rest()
    elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = r.u16()
        p.reason = 0
        if version == 5 and r.remaining():
            p.reason = r.byte()
            if r.remaining():
                p.props = r.properties()
    elif t in (SUBACK, UNSUBACK):
        p.pid = r.u16()
        if version == 5:
            p.props = r.properties()
        p.reasons = list(r.rest())
    elif t == DISCONNECT:
        p.reason = 0
        if r.remaining():
            p.reason = r.byte()
            if r.remaining():
                p.props = r.properties()
    elif t == AUTH:
        p.reason = 0
        if r.remaining():
            p.reason = r.byte()
            if r.remaining():
                p.props = r.properties()
    return p


# ---------------------------------------------------------------- client

class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """A blocking MQTT client over a plain socket.

    auto_ack: when True, every PUBLISH read from the socket is acknowledged at once
    (PUBACK for QoS 1, PUBREC for QoS 2) and every PUBREL is answered with PUBCOMP.
    Set it to False to act as a slow or stuck subscriber.
    Packets read while waiting for something else are kept in order in self.pending.
    """

    def __init__(self, host, port, version=4, timeout=5.0):
        self.host, self.port, self.version = host, port, version
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pending = []
        self.auto_ack = True
        self.closed = False
        self._next_pid = 0
        self.connack = None

    # -- low level

    def send(self, data):
        self.sock.sendall(data)

    def next_pid(self):
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def _try_parse(self):
        buf = self.buf
        if len(buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(buf):
                return None
            b = buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise ValueError("server sent remaining length > 4 bytes")
        if len(buf) < i + length:
            return None
        first = buf[0]
        body = bytes(buf[i:i + length])
        del buf[:i + length]
        return decode_packet(first, body, self.version)

    def _read_socket_packet(self, deadline):
        """Next packet from the socket, None on timeout, raises Closed on EOF/reset."""
        while True:
            p = self._try_parse()
            if p is not None:
                self._auto_ack(p)
                return p
            if self.closed:
                raise Closed()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
                data = b""
            except socket.timeout:
                continue
            if not data:
                self.closed = True
                p = self._try_parse()
                if p is not None:
                    return p
                raise Closed()
            self.buf += data

    def _auto_ack(self, p):
        if not self.auto_ack or self.closed:
            return
        try:
            if p.type == PUBLISH and p.qos == 1:
                self.send(ack_packet(PUBACK, p.pid, self.version))
            elif p.type == PUBLISH and p.qos == 2:
                self.send(ack_packet(PUBREC, p.pid, self.version))
            elif p.type == PUBREL:
                self.send(ack_packet(PUBCOMP, p.pid, self.version))
        except OSError:
            pass

    def recv(self, timeout=5.0):
        """Next packet (pending first); None on timeout; raises Closed."""
        if self.pending:
            return self.pending.pop(0)
        return self._read_socket_packet(time.monotonic() + timeout)

    def wait_for(self, ptype, timeout=5.0, pid=None):
        """Read until a packet of ptype (and pid) arrives; others go to pending."""
        for i, p in enumerate(self.pending):
            if p.type == ptype and (pid is None or p.pid == pid):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            p = self._read_socket_packet(deadline)
            if p is None:
                raise AssertionError("no %s (pid=%s) within %.1fs; pending=%r" % (
                    TYPE_NAMES[ptype], pid, timeout, self.pending[-10:]))
            if p.type == ptype and (pid is None or p.pid == pid):
                return p
            self.pending.append(p)

    # -- high level

    def connect(self, client_id="", clean=True, keepalive=60, props=None, will=None,
                timeout=5.0, **kw):
        self.send(connect_packet(client_id, self.version, clean, keepalive, props, will, **kw))
        self.connack = self.wait_for(CONNACK, timeout)
        return self.connack

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, dup=False,
                pid=None, timeout=5.0):
        """Publish and complete the QoS flow. Returns the final ack packet (or None)."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(publish_packet(topic, payload, qos, retain, dup, pid if qos else None,
                                 self.version, props))
        if qos == 1:
            return self.wait_for(PUBACK, timeout, pid)
        if qos == 2:
            rec = self.wait_for(PUBREC, timeout, pid)
            if rec.reason is not None and rec.reason >= 0x80:
                return rec
            self.send(ack_packet(PUBREL, pid, self.version))
            return self.wait_for(PUBCOMP, timeout, pid)
        return None

    def subscribe(self, filters, props=None, timeout=5.0):
        """filters: str, (filter, opts) or list of them. Returns the SUBACK reason codes."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        elif isinstance(filters, tuple):
            filters = [filters]
        pid = self.next_pid()
        self.send(subscribe_packet(pid, filters, self.version, props))
        return self.wait_for(SUBACK, timeout, pid).reasons

    def unsubscribe(self, filters, timeout=5.0):
        if isinstance(filters, str):
            filters = [filters]
        pid = self.next_pid()
        self.send(unsubscribe_packet(pid, filters, self.version))
        return self.wait_for(UNSUBACK, timeout, pid).reasons

    def disconnect(self, reason=None, props=None):
        try:
            self.send(disconnect_packet(self.version, reason, props))
        except OSError:
            pass
        self.close()

    def disconnect_and_wait(self, timeout=5.0, reason=None, props=None):
        """Send DISCONNECT, half-close, and wait until the server closes its side: after
        that the server has processed the DISCONNECT (the session is offline), so a test
        can publish 'while the client is offline' without racing the disconnect."""
        self.send(disconnect_packet(self.version, reason, props))
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = self.wait_closed(timeout)
        self.close()
        return got

    def ping(self, timeout=5.0):
        self.send(pingreq_packet())
        return self.wait_for(PINGRESP, timeout)

    def publishes(self, n, timeout=5.0):
        """Collect exactly n PUBLISH packets (fails with what arrived otherwise)."""
        got = []
        keep = []
        for p in self.pending:
            if p.type == PUBLISH and len(got) < n:
                got.append(p)
            else:
                keep.append(p)
        self.pending = keep
        deadline = time.monotonic() + timeout
        while len(got) < n:
            try:
                p = self._read_socket_packet(deadline)
            except Closed:
                raise AssertionError("connection closed after %d/%d PUBLISH: %r" % (
                    len(got), n, got[-5:]))
            if p is None:
                raise AssertionError("only %d/%d PUBLISH within %.1fs; last: %r" % (
                    len(got), n, timeout, got[-5:]))
            if p.type == PUBLISH:
                got.append(p)
            else:
                self.pending.append(p)
        return got

    def no_publish(self, duration=1.0):
        """Assert that no PUBLISH arrives within duration (an absence check, not a sync)."""
        extra = [p for p in self.pending if p.type == PUBLISH]
        assert not extra, "unexpected PUBLISH: %r" % extra
        deadline = time.monotonic() + duration
        while True:
            p = self._read_socket_packet(deadline)
            if p is None:
                return
            assert p.type != PUBLISH, "unexpected PUBLISH: %r" % p
            self.pending.append(p)

    def wait_closed(self, timeout=5.0):
        """Assert the server closes the connection within timeout. Returns the packets
        received before the close (e.g. a DISCONNECT)."""
        got = list(self.pending)
        self.pending = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self._read_socket_packet(deadline)
            except Closed:
                return got
            except OSError:
                return got
            if p is None:
                raise AssertionError("connection still open after %.1fs; got %r" % (
                    timeout, got[-5:]))
            got.append(p)

    def is_open(self, timeout=0.5):
        """True if the connection still answers a PINGREQ."""
        try:
            self.send(pingreq_packet())
            self.wait_for(PINGRESP, timeout)
            return True
        except (Closed, OSError, AssertionError):
            return False
