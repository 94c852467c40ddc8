"""Offline queues on disk (issue 12): a backlog far larger than sqlite.flush_mem_threshold,
drained while kill -9 hits the broker at random points, several rounds. Nothing acknowledged
is lost, the order of each publisher is kept, QoS 2 arrives exactly once, and the broker's
memory stays bounded: the backlog waits in SQLite, not in RAM (the bound is far above what
the broker needs, so this is not a benchmark; bench/compare.py's `backlog` is).

The backlog is published by `harbormq bench pub` (stamped payloads: publisher number and
sequence); the drain is a raw-socket MQTT client here, so the test sees every PUBLISH,
decides when to acknowledge, and keeps its own QoS 2 receiver state across reconnects.
"""

import os
import random
import re
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

import mqttraw
from broker_harness import HARBORMQ_BIN

pytestmark = pytest.mark.harbormq_only

Q1_PUBLISHERS, Q1_EACH = 4, 50_000   # 200,000 QoS 1 messages
Q2_PUBLISHERS, Q2_EACH = 1, 10_000   # and 10,000 QoS 2 ones, exactly once
PAYLOAD = 600                        # bytes: 210,000 of them are ~130 MB of payload
RSS_BOUND_KIB = 100 * 1024           # the whole backlog in memory would be far above it
CLIENT = "paging-drain"


def publish_backlog(broker, tmp_path):
    """Both publisher groups at once; every message acknowledged (bench pub exits 0)."""
    procs = []
    for qos, pubs, each, first in ((1, Q1_PUBLISHERS, Q1_EACH, 0), (2, Q2_PUBLISHERS, Q2_EACH, 100)):
        cmd = [HARBORMQ_BIN, "bench", "pub", "-p", str(broker.port), "-c", str(pubs),
               "-n", str(first), "-q", str(qos), "-s", str(PAYLOAD), "-L", str(each),
               "--inflight", "64", "-t", "bk/q%d/%%i" % qos, "--quiet", "--timeout", "60"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out.decode(errors="replace")[-2000:]


class Drainer:
    """The persistent subscriber's connections, one at a time, and what they received.
    QoS 1: acknowledged on receipt. QoS 2: delivered on the first PUBLISH of a packet id,
    PUBREC; a PUBLISH again under an id that awaits PUBREL is the same message; PUBREL ends
    it with PUBCOMP (the receiver state is the client's, kept across reconnects)."""

    def __init__(self, broker):
        self.broker = broker
        self.first_seen = {}        # publisher -> set of seqs delivered
        self.last_new = {}          # publisher -> highest seq delivered on this connection
        self.q2_awaiting_rel = {}   # packet id -> (publisher, seq)
        self.q2_delivered = {}      # (publisher, seq) -> times delivered to the application
        self.order_errors = []
        self.sock = None
        self.buf = b""

    def connect(self, subscribe=False):
        s = socket.create_connection((self.broker.host, self.broker.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(mqttraw.connect_packet(CLIENT, version=4, clean=False, keepalive=60))
        self.sock, self.buf = s, b""
        ack = self._next_packet(time.monotonic() + 10)
        assert ack is not None and ack[0] >> 4 == mqttraw.CONNACK and ack[1][1] == 0, ack
        if subscribe:
            body = (struct.pack("!H", 1) + mqttraw.mqtt_str("bk/q1/#") + b"\x01" +
                    mqttraw.mqtt_str("bk/q2/#") + b"\x02")
            s.sendall(mqttraw.packet(mqttraw.SUBSCRIBE, 2, body))
            suback = self._next_packet(time.monotonic() + 10)
            assert suback is not None and suback[0] >> 4 == mqttraw.SUBACK, suback
            assert suback[1][2:] == b"\x01\x02", suback
        self.last_new = {}

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def disconnect(self):
        """DISCONNECT, then wait until the broker closes the socket: the session is offline
        before anything is published for it."""
        self.sock.sendall(mqttraw.disconnect_packet())
        assert self._next_packet(time.monotonic() + 10) is None, "broker sent a packet after DISCONNECT"
        self.close()

    def _next_packet(self, deadline):
        """(first byte, body) or None when the connection ended or the deadline passed."""
        while True:
            p = self._parse()
            if p is not None:
                return p
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if not r:
                continue
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def _parse(self):
        buf = self.buf
        if len(buf) < 2:
            return None
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return None
            b = buf[i]
            length += (b & 0x7F) * mult
            mult <<= 7
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            return None
        first, body = buf[0], buf[i:i + length]
        self.buf = buf[i + length:]
        return first, body

    def _deliver(self, publisher, seq):
        seen = self.first_seen.setdefault(publisher, set())
        if seq in seen:
            return  # QoS 1 again after a restart: allowed, not a new delivery
        if seq < self.last_new.get(publisher, -1):
            self.order_errors.append((publisher, seq, self.last_new[publisher]))
        self.last_new[publisher] = seq
        seen.add(seq)

    def run(self, quiet_s):
        """Reads and acknowledges until the connection ends or nothing came for quiet_s."""
        out = []
        deadline = time.monotonic() + quiet_s
        while True:
            p = self._next_packet(deadline)
            if p is None:
                break
            deadline = time.monotonic() + quiet_s
            first, body = p
            ptype = first >> 4
            if ptype == mqttraw.PUBLISH:
                qos = (first >> 1) & 3
                tlen = struct.unpack_from("!H", body)[0]
                pid = struct.unpack_from("!H", body, 2 + tlen)[0]
                publisher, seq = struct.unpack_from("<II", body, 4 + tlen)
                if qos == 1:
                    self._deliver(publisher, seq)
                    out.append(mqttraw.ack_packet(mqttraw.PUBACK, pid))
                else:
                    if pid not in self.q2_awaiting_rel:
                        self.q2_awaiting_rel[pid] = (publisher, seq)
                        key = (publisher, seq)
                        self.q2_delivered[key] = self.q2_delivered.get(key, 0) + 1
                        self._deliver(publisher, seq)
                    out.append(mqttraw.ack_packet(mqttraw.PUBREC, pid))
            elif ptype == mqttraw.PUBREL:
                pid = struct.unpack_from("!H", body)[0]
                self.q2_awaiting_rel.pop(pid, None)
                out.append(mqttraw.ack_packet(mqttraw.PUBCOMP, pid))
            if len(out) >= 64 or not self.buf:
                try:
                    self.sock.sendall(b"".join(out))
                except OSError:
                    break
                out = []
        if out:
            try:
                self.sock.sendall(b"".join(out))
            except OSError:
                pass

    def delivered(self):
        return sum(len(s) for s in self.first_seen.values())


def test_backlog_drained_through_kill9_rounds(persist_broker, tmp_path):
    b = persist_broker(max_mqueue_len=0, extra_conf=(
        "sqlite { flush_mem_threshold = 100, disk_cache_size = 0 }\n"))
    d = Drainer(b)
    d.connect(subscribe=True)
    d.disconnect()
    publish_backlog(b, tmp_path)
    queued_hwm = b.status_kib("VmHWM")
    assert queued_hwm < RSS_BOUND_KIB, "peak RSS %d KiB while queuing" % queued_hwm

    rng = random.Random(int(os.environ.get("HARBOR_TEST_SEED", "12")))
    total = Q1_PUBLISHERS * Q1_EACH + Q2_PUBLISHERS * Q2_EACH
    peaks = [queued_hwm]
    progress = []  # delivered after each round
    # kill -9 before the drain, then at random points of it.
    b.kill9()
    b.start(timeout=30)
    for _ in range(4):
        d.connect()
        t = threading.Thread(target=d.run, args=(5.0,), daemon=True)
        t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        peaks.append(b.status_kib("VmHWM"))
        b.kill9()
        t.join(15)
        assert not t.is_alive(), "drainer did not notice the kill"
        d.close()
        b.start(timeout=30)
        progress.append(d.delivered())
    d.connect()
    d.run(quiet_s=5.0)
    peaks.append(b.status_kib("VmHWM"))
    d.close()

    assert d.order_errors == [], d.order_errors[:10]
    missing = {}
    for pub, each in [(i, Q1_EACH) for i in range(Q1_PUBLISHERS)] + \
                     [(100 + i, Q2_EACH) for i in range(Q2_PUBLISHERS)]:
        got = d.first_seen.get(pub, set())
        lost = each - len(got & set(range(each)))
        if lost:
            missing[pub] = lost
    assert missing == {}, "acknowledged messages lost (publisher: count): %r" % missing
    assert d.delivered() == total
    twice = {k: n for k, n in d.q2_delivered.items() if n != 1}
    assert twice == {}, "QoS 2 delivered more than once: %r" % list(twice.items())[:10]
    assert len(d.q2_delivered) == Q2_PUBLISHERS * Q2_EACH
    assert max(peaks) < RSS_BOUND_KIB, "peak RSS per phase (KiB): %r" % peaks
    # Each restart left the queue on disk: restore loaded the head only.
    paged = [int(n) for n in re.findall(r"\((\d+) sessions with more on disk\)", b.log_text())]
    assert len(paged) == 6 and paged[1] == 1, paged
    # The kills hit the drain, not only its end.
    assert sum(1 for n in progress if 0 < n < total) >= 2, progress
    print("peak RSS per phase (KiB): %r; delivered after each round: %r" % (peaks, progress))
