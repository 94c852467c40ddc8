"""Flow control and bounded memory under overload (issue 10), against the real broker.

A publisher is read only as fast as the receivers of its messages drain; nothing is dropped
for a receiver that is alive and reading, however slowly; QoS 0 is dropped only for a stuck
receiver; retained messages on SUBSCRIBE are paced by the window; 3.1.1 QoS 1/2 publishes
are always answered; partial packets and idle connections cost what they hold.

The slow subscribers are `harbormq bench sub --rate N`: it reads at most N messages a second
and leaves the rest in the socket, so TCP backpressure reaches the broker (a paho client
sleeping in on_message does not: its network thread keeps reading). Memory is read from
/proc/PID/status of the broker process the fixture started.
"""

import json
import os
import re
import resource
import select
import socket
import subprocess
import threading
import time

import pytest

import mqttraw
from broker_harness import HARBORMQ_BIN, proc_status_kib
from helpers import HOST, PahoClient, free_port, wait_for

pytestmark = pytest.mark.harbormq_only

MIB = 1024 * 1024


# ---------------------------------------------------------------- helpers

def default_config_broker(make_broker, tmp_path, **mqtt):
    """A broker with the shipped defaults for every mqtt key (max_mqueue_len = 2048,
    max_inflight_window = 2048, retry_interval = 10 s ...), not the harness's tighter ones;
    keys given here are set on top."""
    port = free_port()
    path = tmp_path / "defaults.conf"
    body = "".join("  %s = %s\n" % (k, v) for k, v in mqtt.items())
    path.write_text('listeners.tcp { bind = "%s:%d" }\n' % (HOST, port) +
                    "system { num_taskq_thread = 2 }\n" +
                    ("mqtt {\n%s}\n" % body if body else ""))
    return make_broker(conf_path=str(path), port=port)


class Bench:
    """Runs `harbormq bench pub|sub` against a broker; every process it started is killed
    (by its pid) at teardown if it is still running."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []
        self.n = 0

    def start(self, broker, mode, *args):
        self.n += 1
        out = str(self.tmp_path / ("bench-%s-%d.json" % (mode, self.n)))
        ready = str(self.tmp_path / ("bench-%s-%d.ready" % (mode, self.n)))
        log = open(str(self.tmp_path / ("bench-%s-%d.log" % (mode, self.n))), "wb")
        cmd = [HARBORMQ_BIN, "bench", mode, "-h", broker.host, "-p", str(broker.port),
               "--quiet", "--threads", "1", "--json", out]
        if mode == "sub":
            cmd += ["--ready-file", ready]
        cmd += [str(a) for a in args]
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        p.json_path, p.ready_path, p.log_path, p.cmd = out, ready, log.name, cmd
        self.procs.append(p)
        return p

    def output(self, p):
        with open(p.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def wait_ready(self, p, timeout=30.0):
        """A subscriber is connected and subscribed (its --ready-file exists)."""
        wait_for(lambda: os.path.exists(p.ready_path) or p.poll() is not None, timeout,
                 what="bench sub to subscribe")
        assert os.path.exists(p.ready_path), "bench sub exited with %s before SUBACK:\n%s" % (
            p.returncode, self.output(p))

    def finish(self, p, timeout, ok_codes=(0,)):
        """Wait for the process, return its JSON results."""
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            raise AssertionError("%s still running after %.0f s:\n%s" % (
                " ".join(p.cmd), timeout, self.output(p)))
        assert rc in ok_codes, "%s exited with %d:\n%s" % (" ".join(p.cmd), rc, self.output(p))
        with open(p.json_path) as f:
            return json.load(f)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path)
    yield b
    b.cleanup()


class PeakSampler:
    """Samples the broker's VmRSS in a thread until stopped; peak_kib is the highest seen."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.peak_kib = proc_status_kib(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak_kib


def peer_closed_within(sock, timeout):
    """True when the broker closes the socket (EOF or reset) within timeout; data it sends
    meanwhile is read and discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.0, deadline - time.monotonic())
        try:
            r, _, _ = select.select([sock], [], [], left)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return True
        except BlockingIOError:
            continue


def still_open(sock):
    """True when the broker has not closed the socket (checked without blocking)."""
    return not peer_closed_within(sock, 0)


TOTALS = {
    "dropped_qos0_stuck": r"(\d+) QoS 0 dropped for stuck receivers",
    "dropped_queue_full": r"(\d+) dropped on full queues",
    "awaiting_rel_over_limit": r"(\d+) MQTT 3.1.1 QoS 2 accepted beyond mqtt.max_awaiting_rel",
}


def stop_and_read_totals(broker):
    """Stop the broker (SIGTERM, exit 0) and return the counters of its shutdown totals line."""
    broker.stop()
    text = broker.log_text()
    got = {}
    for key, pattern in TOTALS.items():
        m = re.findall(pattern, text)
        assert m, "no '%s' in the shutdown totals; log:\n%s" % (pattern, broker.log_tail())
        got[key] = int(m[-1])
    return got


def broker_unread_bytes(broker, socks):
    """Bytes the broker has not read yet from these client sockets: the receive queue of its
    end of each connection in /proc/net/tcp (None while one of them is not listed)."""
    ports = {s.getsockname()[1] for s in socks}
    found = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            if local_port == broker.port and remote_port in ports and fields[3] == "01":
                found[remote_port] = int(fields[4].split(":")[1], 16)
    if len(found) < len(ports):
        return None
    return sum(found.values())


def wait_broker_read_all(broker, socks, timeout=15):
    """Wait until the broker has read everything these sockets sent (still open ones)."""
    wait_for(lambda: broker_unread_bytes(broker, socks) == 0, timeout, interval=0.05,
             what="the broker to read what %d sockets sent" % len(socks))


def raw_connect(broker, client_id, version=4, keepalive=60, rcvbuf=None):
    """A RawClient with CONNACK 0; rcvbuf sets SO_RCVBUF before any data arrives."""
    c = mqttraw.RawClient(broker.host, broker.port, version, timeout=10)
    if rcvbuf is not None:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ack = c.connect(client_id, keepalive=keepalive, timeout=10)
    assert ack.reason == 0, "CONNACK reason %#x" % ack.reason
    return c


# ---------------------------------------------------------------- live slow receivers

def test_live_slow_qos1_subscriber_loses_nothing_and_pauses_its_publishers(
        make_broker, tmp_path, bench):
    """Defect (issue 10): with the default config (max_mqueue_len = 2048) `bench pub -q 1`
    against a live QoS 1 `bench sub` that could not keep up got thousands of gaps: messages
    acknowledged to their publishers, then dropped for a subscriber that was online and
    reading ("session queue full ... dropping new messages"). Now the full receiver pauses
    its publishers instead: every acknowledged message arrives, none is dropped."""
    broker = default_config_broker(make_broker, tmp_path)
    pubs, per_pub, rate = 4, 5000, 2000
    total = pubs * per_pub
    sub = bench.start(broker, "sub", "-c", 1, "-t", "flow/q1/#", "-q", 1, "--rate", rate,
                      "-L", total, "--idle", 15, "--duration", 150, "--timeout", 30)
    bench.wait_ready(sub)
    pub = bench.start(broker, "pub", "-c", pubs, "-t", "flow/q1/%i", "-q", 1, "-s", 100,
                      "-L", per_pub, "--inflight", 64, "--timeout", 60, "--drain", 60)
    p = bench.finish(pub, timeout=150)
    s = bench.finish(sub, timeout=150)
    print("QoS 1 slow subscriber: %d acked, %d unique, %d gaps, publishers ran %.1f s, "
          "receive window %.1f s" % (p["acked"], s["unique"], s["gaps"], p["run_s"],
                                     s["receive_window_s"]))
    assert p["sent"] == total and p["acked"] == total and p["rejected"] == 0, p
    assert s["gaps"] == 0, "gaps: messages acknowledged to publishers, then lost: %r" % s
    assert s["unique"] == p["acked"], "subscriber got %d of %d acknowledged messages" % (
        s["unique"], p["acked"])
    assert s["duplicates"] == 0, s
    assert s["connection_lost"] == 0 and s["error_count"] == 0, s
    # The subscriber really was the bottleneck (reading at most `rate` a second), so the
    # publishers were held back rather than served faster than it read.
    assert s["receive_window_s"] >= 0.6 * total / rate, s
    assert "queue full" not in broker.log_text(), broker.log_tail()
    assert stop_and_read_totals(broker)["dropped_queue_full"] == 0


def test_live_slow_qos0_subscriber_loses_nothing_and_memory_stays_bounded(make_broker, bench):
    """Defect (issue 10): `fanin-q0` dropped 25 M QoS 0 messages for a subscriber that was
    alive and reading and peaked at 971 MB RSS, because publishers were read far faster than
    the receiver drained. Now a live slow QoS 0 subscriber gets everything (its publishers
    wait) and the broker's peak RSS stays small."""
    broker = make_broker()
    pubs, per_pub = 4, 5000
    total = pubs * per_pub
    sub = bench.start(broker, "sub", "-c", 1, "-t", "flow/q0/#", "-q", 0, "--rate", 4000,
                      "-L", total, "--idle", 15, "--duration", 120)
    bench.wait_ready(sub)
    pub = bench.start(broker, "pub", "-c", pubs, "-t", "flow/q0/%i", "-q", 0, "-s", 256,
                      "-L", per_pub)
    p = bench.finish(pub, timeout=120)
    s = bench.finish(sub, timeout=120)
    assert p["sent"] == total, p
    assert s["unique"] == total and s["gaps"] == 0, \
        "QoS 0 dropped for a live (slow) subscriber: got %d of %d: %r" % (s["unique"], total, s)
    hwm = proc_status_kib(broker.pid, "VmHWM")
    print("QoS 0 slow subscriber: %d received in %.1f s, broker VmHWM %d KiB" % (
        s["unique"], s["receive_window_s"], hwm))
    assert hwm < 100 * 1024, "broker VmHWM %d KiB for a 20,000-message QoS 0 flood" % hwm
    assert "does not read" not in broker.log_text(), broker.log_tail()
    assert stop_and_read_totals(broker)["dropped_qos0_stuck"] == 0


# ---------------------------------------------------------------- stuck receiver

def test_stuck_qos0_subscriber_is_dropped_for_and_holds_nobody_back(make_broker, bench):
    """Defect (issue 10): output to a receiver that never reads grew without bound (RSS in
    the hundreds of MB) or, with backpressure, could hold its publishers back forever. Now
    QoS 0 to a stuck receiver (4 MiB waiting, no write progress for 500 ms) is dropped,
    logged once; memory stays bounded; its publisher goes on, and an unrelated subscriber
    fed during the flood gets all of its messages."""
    broker = make_broker()
    stuck = raw_connect(broker, "flow-stuck", rcvbuf=64 * 1024)
    assert stuck.subscribe([("flow/stuck/#", 0)]) == [0]
    # From here on the stuck subscriber never reads its socket again.
    ok_count = 2000
    ok_sub = bench.start(broker, "sub", "-c", 1, "-t", "flow/ok", "-q", 0, "-L", ok_count,
                         "--idle", 10, "--duration", 120)
    bench.wait_ready(ok_sub)
    sampler = PeakSampler(broker.pid)
    before = proc_status_kib(broker.pid, "VmRSS")
    flood = bench.start(broker, "pub", "-c", 2, "-t", "flow/stuck/%i", "-q", 0, "-s", 1024,
                        "--duration", 5)
    ok_pub = bench.start(broker, "pub", "-c", 1, "-n", 100, "-t", "flow/ok", "-q", 0,
                         "-s", 64, "--rate", 500, "-L", ok_count)
    f = bench.finish(flood, timeout=60)
    o = bench.finish(ok_pub, timeout=60)
    peak = sampler.stop()
    print("stuck subscriber: flood of %d x 1 KiB in %.1f s, broker VmRSS %d -> peak %d KiB" % (
        f["sent"], f["run_s"], before, peak))
    wait_for(lambda: "client 'flow-stuck' does not read" in broker.log_text(), 10,
             what="the QoS 0 drop line for the stuck client")
    s = bench.finish(ok_sub, timeout=60)
    assert o["sent"] == ok_count, o
    assert s["unique"] == ok_count and s["gaps"] == 0, \
        "the normal subscriber got %d of %d during the flood: %r" % (s["unique"], o["sent"], s)
    # Held back at most for the stuck detection: far more was published than the bounds hold
    # (16 MiB hard bound plus socket buffers).
    flooded = f["sent"] * 1024
    assert flooded > 64 * MIB, "the flood publisher sent only %.1f MiB in 5 s: %r" % (
        flooded / MIB, f)
    assert peak < 100 * 1024, "broker VmRSS peaked at %d KiB (%d KiB before the flood)" % (
        peak, before)
    assert broker.log_text().count("does not read") <= 2, broker.log_tail()  # once per shard
    stuck.close()
    assert stop_and_read_totals(broker)["dropped_qos0_stuck"] > 0


# ---------------------------------------------------------------- retained messages

def publish_pipelined(client, packets, acks_of, timeout):
    """Send every packet from a thread while reading acknowledgements here; returns the
    set of packet ids acknowledged by a packet of type acks_of."""
    errors = []

    def sender():
        try:
            client.send(b"".join(packets))
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = set()
    deadline = time.monotonic() + timeout
    while len(got) < len(packets):
        p = client._read_socket_packet(deadline)
        if p is None:
            break
        if p.type == acks_of:
            got.add(p.pid)
    t.join(timeout)
    assert not errors, errors
    return got


def test_ten_thousand_retained_qos1_messages_all_reach_a_wildcard_subscriber(make_broker):
    """Defect (issue 10): a QoS 1 `#` subscriber to 10,000 retained messages got 4,096
    (inflight + queue), the rest dropped with one warning. Now they are sent paced by the
    window: all 10,000 arrive, here even with inflight 20 and max_mqueue_len 1000."""
    broker = make_broker()
    n = 10000
    pub = raw_connect(broker, "flow-ret-pub")
    packets = [mqttraw.publish_packet("flow/ret/%05d" % i, b"r%05d" % i, qos=1, retain=True,
                                      pid=i + 1) for i in range(n)]
    acked = publish_pipelined(pub, packets, mqttraw.PUBACK, timeout=60)
    assert len(acked) == n, "only %d of %d retained QoS 1 PUBLISH acknowledged" % (len(acked), n)
    pub.disconnect()

    sub = raw_connect(broker, "flow-ret-sub")
    assert sub.subscribe([("flow/ret/#", 1)]) == [1]
    got = sub.publishes(n, timeout=90)
    topics = {p.topic for p in got}
    assert len(topics) == n, "%d distinct topics of %d" % (len(topics), n)
    assert all(p.retain and p.qos == 1 and p.payload == b"r" + p.topic[-5:].encode()
               for p in got), [p for p in got if not p.retain][:3]
    sub.no_publish(0.5)
    assert "queue full" not in broker.log_text(), broker.log_tail()
    sub.close()
    assert stop_and_read_totals(broker)["dropped_queue_full"] == 0


# ---------------------------------------------------- 3.1.1 QoS 2 beyond max_awaiting_rel

def test_v311_three_thousand_qos2_publishes_are_all_answered(make_broker):
    """Defect (issue 10): 3.1.1 QoS 1/2 publishes beyond 2048 unacknowledged were silently
    discarded (max_awaiting_rel applied to QoS 1 too): 3,000 QoS 2 PUBLISHes back to back got
    2,048 PUBRECs and the rest nothing. Now every one gets its PUBREC and PUBCOMP, the excess
    over max_awaiting_rel (2048) is logged, and every message is delivered once."""
    broker = make_broker()
    n = 3000
    sub = raw_connect(broker, "flow-q2-sub")
    assert sub.subscribe([("flow/q2", 0)]) == [0]
    pub = raw_connect(broker, "flow-q2-pub")
    publishes = [mqttraw.publish_packet("flow/q2", b"m%04d" % i, qos=2, pid=i + 1)
                 for i in range(n)]
    recs = publish_pipelined(pub, publishes, mqttraw.PUBREC, timeout=60)
    assert len(recs) == n, "%d PUBRECs for %d QoS 2 PUBLISH" % (len(recs), n)
    pubrels = [mqttraw.ack_packet(mqttraw.PUBREL, i + 1) for i in range(n)]
    comps = publish_pipelined(pub, pubrels, mqttraw.PUBCOMP, timeout=60)
    assert len(comps) == n, "%d PUBCOMPs for %d PUBREL" % (len(comps), n)
    got = sub.publishes(n, timeout=60)
    assert len({p.payload for p in got}) == n
    sub.no_publish(0.5)
    assert "more than mqtt.max_awaiting_rel=2048" in broker.log_text(), broker.log_tail()
    assert pub.is_open()
    pub.close()
    sub.close()
    # Counted: every flow accepted while 2048 were already awaiting PUBREL.
    assert stop_and_read_totals(broker)["awaiting_rel_over_limit"] == n - 2048


def test_paho_v311_three_thousand_qos2_publishes_complete(make_broker):
    """Defect (issue 10): paho 1.6 sending more QoS 2 messages than max_awaiting_rel
    without waiting (max_inflight_messages_set(3000)) hung forever: the broker answered
    2,048 and dropped the rest without a word. Now all 3,000 complete."""
    broker = make_broker()
    n = 3000
    client = PahoClient(broker, 4)
    try:
        client.c.max_inflight_messages_set(n)
        infos = [client.c.publish("flow/paho/q2", b"p%04d" % i, qos=2) for i in range(n)]
        assert all(i.rc == 0 for i in infos)
        deadline = time.monotonic() + 90
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        done = sum(1 for i in infos if i.is_published())
        assert done == n, "%d of %d paho QoS 2 publishes completed" % (done, n)
    finally:
        client.close()


def test_paho_v311_resends_three_thousand_qos2_on_reconnect_and_all_complete(make_broker):
    """Defect (issue 10): paho 1.6 resends its whole queue when it reconnects; with more
    than 2,048 QoS 2 messages outstanding the broker answered 2,048 and silently dropped the
    rest, so paho hung forever after any broker restart or dropped connection. Here 3,000
    QoS 2 messages are published while the broker is down; paho sends them all at once on
    reconnect and every one completes."""
    broker = make_broker()
    n = 3000
    client = PahoClient(broker, 4)
    disconnected = threading.Event()
    client.c.on_disconnect = lambda *a: disconnected.set()
    client.c.reconnect_delay_set(min_delay=1, max_delay=1)
    client.c.max_inflight_messages_set(n)
    completed = set()
    lock = threading.Lock()

    def on_publish(_client, _userdata, mid):
        with lock:
            completed.add(mid)

    client.c.on_publish = on_publish
    try:
        broker.stop()
        assert disconnected.wait(10), "paho did not notice the broker going away"
        # Published while disconnected (rc: not connected): queued, sent on reconnect.
        mids = {client.c.publish("flow/paho/resend", b"r%04d" % i, qos=2).mid
                for i in range(n)}
        assert len(mids) == n and not completed
        broker.start()
        try:
            wait_for(lambda: len(completed & mids) == n, 90, interval=0.1,
                     what="3,000 QoS 2 flows resent on reconnect to complete")
        except AssertionError:
            raise AssertionError("%d of %d paho QoS 2 publishes completed after reconnect" % (
                len(completed & mids), n))
    finally:
        client.close()


# ---------------------------------------------------------------- partial packets

@pytest.mark.parametrize("when", ["before_connect", "after_connect_keepalive_0"])
def test_partial_packets_cost_what_arrived_not_what_they_announce(make_broker, when):
    """Defect (issue 10): a fixed header `10 fb ff ff 7f` (a 256 MB CONNECT) and then silence
    took broker RSS from 5 to 261 MB per socket, before any authentication (10 sockets:
    2.5 GB); after a CONNECT with keepalive 0 such a buffer (a PUBLISH header) lived forever.
    Now 10 such sockets cost the bytes that arrived; they stay open (the broker did read
    them and waits for the rest)."""
    broker = make_broker(max_packet_size="256MB", connect_timeout="60s")
    header = b"\x10\xfb\xff\xff\x7f" if when == "before_connect" else b"\x30\xfb\xff\xff\x7f"
    before = proc_status_kib(broker.pid, "VmRSS")
    sampler = PeakSampler(broker.pid)
    socks = []
    try:
        for i in range(10):
            if when == "before_connect":
                s = socket.create_connection((broker.host, broker.port), timeout=10)
            else:
                c = raw_connect(broker, "flow-partial-%d" % i, keepalive=0)
                s = c.sock
            s.sendall(header + b"\x00\x04MQTT\x04\x02\x00\x00" + b"\x00" * 100)
            socks.append(s)
        wait_broker_read_all(broker, socks)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            time.sleep(0.05)  # the sampler thread watches RSS meanwhile
        peak = sampler.stop()
        grown = peak - before
        print("partial packets (%s): RSS +%d KiB for 10" % (when, grown))
        assert grown < 20 * 1024, "RSS grew by %d KiB for 10 partial packets" % grown
        open_now = sum(still_open(s) for s in socks)
        assert open_now == 10, "only %d of 10 partial-packet sockets still open" % open_now
    finally:
        sampler.stop()
        for s in socks:
            s.close()


def send_partial_connects(broker, count, total_bytes):
    """count raw sockets, each sending a fixed header announcing a 4 MiB CONNECT and then
    total_bytes in all (header included), and nothing more. Returns the sockets."""
    header = b"\x10" + mqttraw.varint(4 * MIB) + b"\x00\x04MQTT\x04\x02\x00\x00"
    socks = []
    for _ in range(count):
        s = socket.create_connection((broker.host, broker.port), timeout=10)
        socks.append(s)
        try:
            s.sendall(header + b"\x00" * (total_bytes - len(header)))
        except OSError:
            pass  # reset: the broker already closed it
    return socks


def test_input_before_connect_is_bounded_by_a_shared_budget(make_broker):
    """Defect (issue 10): bytes of CONNECTs not complete yet were unbounded (every partial
    packet could hold up to its declared size, before any authentication). Now all
    connections that have not completed CONNECT buffer 16 MiB together: 16 sockets sending
    2 MiB each of a 4 MiB CONNECT, at most 7 fit, the broker closes the rest (logged),
    memory stays bounded, and a normal client can still connect."""
    broker = make_broker(max_packet_size="256MB", connect_timeout="60s")
    n, each = 16, 2 * MIB + 64
    before = proc_status_kib(broker.pid, "VmRSS")
    sampler = PeakSampler(broker.pid)
    socks = []
    try:
        socks = send_partial_connects(broker, n, each)
        # 32 MiB sent, 16 MiB may be held: once everything is read, at most 7 remain.
        wait_for(lambda: sum(not still_open(s) for s in socks) >= n - 7, 20,
                 what="the broker to close the sockets beyond the 16 MiB pre-CONNECT budget")
        wait_broker_read_all(broker, [s for s in socks if still_open(s)])
        wait_for(lambda: "input before CONNECT above the 16 MiB shared by all unconnected "
                 "clients" in broker.log_text(), 10, what="the budget close in the log")
        open_now = sum(still_open(s) for s in socks)
        peak = sampler.stop()
        print("pre-CONNECT budget: %d of %d still open, RSS +%d KiB at peak" % (
            open_now, n, peak - before))
        # The budget is used, not a reason to refuse everyone.
        assert 1 <= open_now <= 7, "%d of %d sockets still open" % (open_now, n)
        grown = peak - before
        assert grown < 64 * 1024, "RSS grew by %d KiB for %d x 2 MiB of partial CONNECT" % (
            grown, n)
        # A normal client is served while the sockets that fit the budget are still open.
        client = PahoClient(broker)
        client.close()
        assert sum(still_open(s) for s in socks) == open_now
    finally:
        sampler.stop()
        for s in socks:
            s.close()


class LockedOut(AssertionError):
    """A new client could not connect while the pre-CONNECT budget was full."""


def test_a_full_pre_connect_budget_does_not_lock_new_clients_out(make_broker):
    """Defect found while testing issue 10: 8 sockets each holding exactly 2 MiB of an
    incomplete CONNECT (16 MiB together, the whole budget) got every new client closed
    before its CONNECT was read, for as long as the holders stayed. A connection holding
    less than 64 KiB is never closed for the budget: a small, complete CONNECT is served."""
    broker = make_broker(max_packet_size="256MB", connect_timeout="60s")
    socks = []
    try:
        socks = send_partial_connects(broker, 8, 2 * MIB)
        wait_broker_read_all(broker, socks)
        assert sum(still_open(s) for s in socks) == 8, "16 MiB must fit the budget"
        deadline = time.monotonic() + 5
        while True:
            c = mqttraw.RawClient(broker.host, broker.port)
            try:
                assert c.connect("after-the-budget", timeout=2).reason == 0
                break
            except (mqttraw.Closed, OSError):
                if time.monotonic() >= deadline:
                    raise LockedOut("no new client could connect for 5 s while the "
                                    "budget was full")
                time.sleep(0.1)
            finally:
                c.close()
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------- protocol errors

@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_pubrec_for_a_qos1_packet_id_closes_the_connection(make_broker, version):
    """Defect (issue 10): a PUBREC for a packet id in flight at QoS 1 was answered with a
    PUBREL. It is a protocol error [MQTT-4.3.2], [MQTT-4.8.0-1]: the broker closes the
    connection (5.0: DISCONNECT 0x82 first) and sends no PUBREL."""
    broker = make_broker()
    sub = raw_connect(broker, "flow-pubrec-sub", version=version)
    sub.auto_ack = False
    opts = 1 if version == 4 else mqttraw.sub_options(qos=1)
    assert sub.subscribe([("flow/pubrec", opts)]) == [1]
    pub = raw_connect(broker, "flow-pubrec-pub")
    assert pub.publish("flow/pubrec", b"x", qos=1).type == mqttraw.PUBACK
    msg = sub.publishes(1, timeout=10)[0]
    assert msg.qos == 1
    sub.send(mqttraw.ack_packet(mqttraw.PUBREC, msg.pid, version))
    got = sub.wait_closed(10)
    assert not any(p.type == mqttraw.PUBREL for p in got), got
    if version == 5:
        assert [p.reason for p in got if p.type == mqttraw.DISCONNECT] == \
            [mqttraw.RC_PROTOCOL_ERROR], got
    assert pub.is_open()
    pub.close()


# ---------------------------------------------------------------- idle connections

def raise_nofile_limit(needed):
    """Raise this process's soft RLIMIT_NOFILE to needed (skip if the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_idle_clients(broker, n, prefix, batch=100):
    """n raw 3.1.1 sockets with CONNECT (keepalive 0) and CONNACK 0, opened batch at a time."""
    socks = []
    try:
        for start in range(0, n, batch):
            group = []
            for i in range(start, min(n, start + batch)):
                s = socket.create_connection((broker.host, broker.port), timeout=10)
                group.append(s)
                s.sendall(mqttraw.connect_packet("%s-%d" % (prefix, i), keepalive=0))
            socks.extend(group)
            for s in group:
                ack = b""
                while len(ack) < 4:
                    chunk = s.recv(4 - len(ack))
                    assert chunk, "closed before CONNACK"
                    ack += chunk
                assert ack == b"\x20\x02\x00\x00", ack
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def test_idle_connections_give_back_their_buffers(make_broker):
    """Defect (issue 10): a connection kept the buffers its largest packet needed for as
    long as it lived (a 200 KB PUBLISH: ~260 KiB per connection, forever with keepalive 0).
    Now they are given back after 1 s without input: 300 connections that each sent one
    200 KB PUBLISH and then idle fall back to a few KiB each."""
    n, size = 300, 200 * 1000
    raise_nofile_limit(n + 200)
    broker = make_broker()
    socks = []
    try:
        socks = open_idle_clients(broker, n, "flow-big")
        before = proc_status_kib(broker.pid, "VmRSS")
        big = mqttraw.publish_packet("flow/big", b"z" * size)
        t0 = time.monotonic()
        for s in socks:
            s.sendall(big + mqttraw.pingreq_packet())
        for s in socks:  # PINGRESP: the broker has read and decoded the whole PUBLISH
            s.settimeout(20)
            assert s.recv(2) == b"\xd0\x00"
        held = proc_status_kib(broker.pid, "VmRSS") - before
        t1 = time.monotonic()
        # Without this the test could not fail: the buffers really were large.
        assert held > n * 100, "RSS grew by only %d KiB for %d x 200 KB packets" % (held, n)
        wait_for(
            lambda: (proc_status_kib(broker.pid, "VmRSS") - before) < n * 8 or None, 15,
            what="idle connections to give back their buffers (%d KiB held)" % held)
        print("buffers: +%d KiB while held (sent in %.1f s), given back after %.1f s" % (
            held, t1 - t0, time.monotonic() - t1))
        assert sum(still_open(s) for s in socks) == n
    finally:
        for s in socks:
            s.close()


def test_idle_connection_costs_less_than_2_kib(make_broker):
    """Defect (issue 10): `conn-10k` measured 3.7 KiB per idle connection (Mosquitto:
    0.7 KiB; target <= 1 KiB). Generous bound here: 2,000 CONNECTed clients that idle for
    more than the 1 s buffer trim cost < 3 KiB of broker VmRSS each (printed). Measured on
    this machine: 3.8 KiB at aa206b7 (a bare TCP connection: 0.6 KiB of it), about 0.9 KiB
    once sessions allocate lazily and the CONNECT's read buffer is freed at once."""
    n = 2000
    raise_nofile_limit(n + 200)
    broker = make_broker()
    socks = []
    try:
        # Warm up the shards (thread stacks, first allocations) before the baseline.
        for c in [raw_connect(broker, "flow-warm-%d" % i) for i in range(20)]:
            c.disconnect_and_wait()
        before = proc_status_kib(broker.pid, "VmRSS")
        socks = open_idle_clients(broker, n, "flow-idle")
        # Buffers are given back after 1 s without input; then RSS stops changing.
        time.sleep(2.0)
        samples = [proc_status_kib(broker.pid, "VmRSS")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.5)
            samples.append(proc_status_kib(broker.pid, "VmRSS"))
            if samples[-1] >= samples[-2]:
                break
        after = samples[-1]
        per_conn = (after - before) * 1024 / n
        print("idle connection cost: %.0f bytes each (VmRSS %d -> %d KiB for %d)" % (
            per_conn, before, after, n))
        assert sum(still_open(s) for s in socks[:50]) == 50
        assert per_conn < 2 * 1024, "%.0f bytes per idle connection" % per_conn
    finally:
        for s in socks:
            s.close()
