"""Descriptor limits and mqtt.max_connections (issue 10): out of file descriptors the broker
neither spins nor locks clients out, it raises its soft RLIMIT_NOFILE at start, and
mqtt.max_connections refuses what is over it (reloadable)."""

import os
import re
import signal
import socket
import time

import pytest

import mqttraw
from helpers import PahoClient, wait_for

pytestmark = pytest.mark.harbormq_only

FD_LIMIT = 64


@pytest.fixture
def limited_broker(make_broker):
    """make_broker(**settings) under `prlimit --nofile=SOFT:HARD` (prlimit execs the broker:
    same pid)."""

    def factory(soft=FD_LIMIT, hard=FD_LIMIT, **settings):
        return make_broker(command_prefix=["prlimit", "--nofile=%d:%d" % (soft, hard), "--"],
                           **settings)

    return factory


def nofile_limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' for pid %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peer_closed(sock):
    """True when the broker has closed this socket (EOF or reset), without blocking."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_soft_nofile_limit_is_raised_to_the_hard_limit_and_logged(limited_broker):
    broker = limited_broker(soft=64, hard=256)
    assert nofile_limits(broker.pid) == (256, 256)
    wait_for(lambda: "RLIMIT_NOFILE soft limit 256 (raised from 64), hard limit 256"
             in broker.log_text(), 5, what="the file descriptor limits in the log")


def fd_table_slots(pid):
    """FDSize in /proc/PID/status: the slots of the kernel's descriptor table."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("FDSize:"):
                return int(line.split()[1])
    raise AssertionError("no FDSize for pid %d" % pid)


def test_descriptor_table_is_sized_at_start_not_grown_under_the_accepting_shard(limited_broker):
    """Linux doubles the table as descriptors open (64, 128, 256, ...), and in a process with
    threads each growth waits for an RCU grace period: 10-30 ms in which the shard accepting
    the socket stops (before the fix the whole p99 of conn-10k-raw). Sized at start to the
    limit (at most 65,536 slots), it does not grow while clients connect."""
    broker = limited_broker(soft=1024, hard=4096)
    slots = fd_table_slots(broker.pid)
    assert slots >= 4096  # the raised soft limit; the kernel rounds up to a power of two
    socks = []
    try:
        for _ in range(300):  # past 256, where an unsized table would have grown
            s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
            socks.append(s)
            s.sendall(mqttraw.connect_packet("fdsize-%d" % len(socks)))
        for s in socks:
            assert s.recv(4)[:1] == b"\x20"  # CONNACK
        assert fd_table_slots(broker.pid) == slots  # never grown while clients connected
    finally:
        for s in socks:
            s.close()


def test_out_of_descriptors_neither_spins_nor_locks_clients_out(limited_broker):
    """soft = hard = 64, so the raise at start cannot help. Before the fix a failing accept
    left the listener readable: shard 0 spun a core, and the backlog of connections the
    broker could not take kept a new client from a CONNACK for as long as they stayed."""
    broker = limited_broker(connect_timeout="60s")  # the held sockets stay until we close them
    assert nofile_limits(broker.pid) == (FD_LIMIT, FD_LIMIT)
    assert "RLIMIT_NOFILE soft limit 64 (already at the hard limit), hard limit 64" in \
        broker.log_text()
    held = []
    try:
        for _ in range(2 * FD_LIMIT):
            held.append(socket.create_connection((broker.host, broker.port), timeout=5))
        # Full: at most one descriptor is free (a socket accepted early may have gone since).
        wait_for(lambda: open_fds(broker.pid) >= FD_LIMIT - 1, 5,
                 what="the broker to fill its descriptor table")

        # Out of descriptors with more connections than descriptors: the broker must idle.
        cpu_before = cpu_seconds(broker.pid)
        window_end = time.monotonic() + 2.0
        while time.monotonic() < window_end:
            assert broker.running(), broker.log_tail()
            time.sleep(0.1)
        used = cpu_seconds(broker.pid) - cpu_before
        assert used < 0.4, "broker used %.2f s of CPU in 2 s while out of descriptors" % used

        wait_for(lambda: "out of file descriptors" in broker.log_text(), 5,
                 what="the out-of-descriptors line in the log")
        line = next(l for l in broker.log_text().splitlines() if "out of file descriptors" in l)
        assert "RLIMIT_NOFILE" in line and str(FD_LIMIT) in line, line

        # The excess was closed by the broker, not left waiting in the backlog.
        wait_for(lambda: sum(peer_closed(s) for s in held) >= FD_LIMIT // 2, 5,
                 what="the broker to close the connections it had no descriptor for")
        # Free some descriptors: close sockets the broker did take.
        taken = [s for s in held if not peer_closed(s)]
        for s in taken[:10]:
            s.close()
        started = time.monotonic()
        client = PahoClient(broker)
        elapsed = time.monotonic() - started
        client.close()
        assert elapsed < 3.0, "CONNACK took %.1f s after descriptors were freed" % elapsed
    finally:
        for s in held:
            s.close()
    broker.stop()
    m = re.search(r"(\d+) closed at accept while out of file descriptors", broker.log_text())
    assert m and int(m.group(1)) > 0, broker.log_tail()


def connect_retrying(broker, timeout=5.0):
    """A raw 3.1.1 client with CONNACK 0, retried while the broker still counts a socket
    that is going away (the count drops when its shard has destroyed the connection)."""
    deadline = time.monotonic() + timeout
    while True:
        c = mqttraw.RawClient(broker.host, broker.port)
        try:
            ack = c.connect("mc-%d-%f" % (os.getpid(), time.monotonic()), timeout=2.0)
            assert ack.reason == 0, "CONNACK reason %#x" % ack.reason
            return c
        except (mqttraw.Closed, OSError):
            c.close()
            if time.monotonic() >= deadline:
                raise AssertionError("no client could connect within %.1f s" % timeout)
            time.sleep(0.05)


def assert_refused(broker):
    """A socket over the limit is closed at once, with no CONNACK."""
    c = mqttraw.RawClient(broker.host, broker.port)
    try:
        try:
            c.send(mqttraw.connect_packet("over-the-limit"))
        except OSError:
            return  # closed before the CONNECT was even written
        got = c.wait_closed(3.0)
        assert not any(p.type == mqttraw.CONNACK for p in got), got
    finally:
        c.close()


REFUSED_LINE = "refusing a new connection: mqtt.max_connections = %d reached"


def test_max_connections_refuses_the_next_one_logs_once_and_counts(make_broker):
    broker = make_broker(max_connections=5)
    clients = [connect_retrying(broker) for _ in range(5)]
    try:
        assert_refused(broker)
        assert_refused(broker)
        wait_for(lambda: REFUSED_LINE % 5 in broker.log_text(), 5, what="the refusal line")
        assert broker.log_text().count(REFUSED_LINE % 5) == 1, broker.log_tail()
        clients.pop(0).disconnect_and_wait()
        clients.append(connect_retrying(broker))
        assert all(c.is_open() for c in clients)
    finally:
        for c in clients:
            c.close()
    broker.stop()
    m = re.search(r"(\d+) connections refused over mqtt.max_connections", broker.log_text())
    assert m and int(m.group(1)) >= 2, broker.log_tail()


def test_max_connections_reload_applies_to_new_accepts(make_broker):
    broker = make_broker(max_connections=2)
    clients = [connect_retrying(broker) for _ in range(2)]
    try:
        assert_refused(broker)
        with open(broker.conf_path) as f:
            text = f.read()
        with open(broker.conf_path, "w") as f:
            f.write(text.replace("max_connections = 2", "max_connections = 3"))
        os.kill(broker.pid, signal.SIGHUP)
        wait_for(lambda: "applied: mqtt.max_connections = 3" in broker.log_text(), 10,
                 what="the reload in the log")
        clients.append(connect_retrying(broker))
        assert_refused(broker)
        assert all(c.is_open() for c in clients), "the reload kept the connections"
    finally:
        for c in clients:
            c.close()
