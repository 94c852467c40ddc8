"""Tests of the bridge test tools themselves: fault_proxy.FaultProxy in front of a
remote_mosquitto.RemoteMosquitto, messages counted with remote_mosquitto.collect.
No HarborMQ broker is involved (these run the same whatever HARBOR_TEST_TARGET says).

Every test ends its processes and threads: the autouse fixture fails a test that leaves a
thread or a mosquitto process behind.
"""

import os
import socket
import threading
import time

import pytest

import mqttraw
import remote_mosquitto
from fault_proxy import MAX_CONNECTIONS, FaultProxy
from helpers import HOST, PahoClient, wait_for
from remote_mosquitto import RemoteMosquitto, collect


@pytest.fixture(autouse=True)
def no_leftovers():
    before = set(threading.enumerate())
    yield
    wait_for(lambda: not [t for t in threading.enumerate() if t not in before],
             timeout=5.0, what="the test's threads to end (%r)" % [
                 t.name for t in threading.enumerate() if t not in before])
    assert not remote_mosquitto._LIVE, "mosquitto left running: %r" % [
        p.pid for p in remote_mosquitto._LIVE]


@pytest.fixture
def remote(tmp_path):
    m = RemoteMosquitto(tmp_path / "remote").start()
    yield m
    crashed = m.proc is not None and not m.running()
    m.close()
    assert not crashed, "mosquitto exited on its own; log:\n%s" % m.log_tail()


@pytest.fixture
def proxy(remote):
    p = FaultProxy(HOST, remote.port)
    yield p
    p.close()


@pytest.fixture
def closing():
    """closing(obj) -> obj; obj.close() (or .stop()) at teardown, last made first."""
    made = []

    def register(obj):
        made.append(obj)
        return obj

    yield register
    for obj in reversed(made):
        (getattr(obj, "close", None) or obj.stop)()


class Sink:
    """A listening socket that never accepts (connections complete in its backlog)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def reset_or_closed(sock, timeout=3.0):
    """True when the peer resets or closes sock within timeout (recv gives RST or EOF)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, ConnectionAbortedError):
        return True
    except socket.timeout:
        return False


# -- FaultProxy in front of mosquitto

def test_pass_through_delivers_and_counts(remote, proxy, closing):
    sub = closing(collect(remote.port, "t/#", 1, "sub-direct"))
    pub = closing(PahoClient(proxy))
    assert proxy.wait_connections(1, 5) == 1
    pub.publish("t/a", b"hello", qos=1)
    got = sub.wait_count(1, 5)
    assert got[0] == ("t/a", b"hello", 1, False, False)
    assert proxy.bytes_up > len(b"hello") and proxy.bytes_down >= 4  # CONNACK + PUBACK
    assert proxy.active_connections == 1 and proxy.mode == "pass"

    # and downstream: a subscriber through the proxy
    sub2 = closing(collect(proxy.port, "d/#", 1, "sub-proxied"))
    direct = closing(PahoClient(remote))
    direct.publish("d/x", b"down", qos=1)
    assert sub2.wait_count(1, 5)[0].payload == b"down"
    assert proxy.connections_accepted == 2


def test_pause_holds_then_delivers(remote, proxy, closing):
    sub = closing(collect(remote.port, "t/#", 1))
    pub = closing(PahoClient(proxy))
    proxy.pause()
    up = proxy.bytes_up
    info = pub.c.publish("t/held", b"held", 1)
    sub.expect_no_more(0, 1.0)
    assert not info.is_published()
    assert proxy.bytes_up == up
    proxy.pass_through()
    assert sub.wait_count(1, 5)[0].payload == b"held"
    info.wait_for_publish(5)
    assert info.is_published(), "PUBACK not delivered after pass_through()"


def test_blackhole_discards(remote, proxy, closing):
    sub = closing(collect(remote.port, "t/#", 1))
    pub = closing(PahoClient(proxy))
    proxy.blackhole()
    pub.c.publish("t/lost", b"lost", 0)
    sub.expect_no_more(0, 1.0)
    wait_for(lambda: proxy.bytes_dropped > 0, 2, what="bytes dropped")
    proxy.pass_through()
    pub.publish("t/marker", b"marker", qos=1)
    got = sub.wait_count(1, 5)
    assert [m.topic for m in got] == ["t/marker"], got


def test_reset_disconnects_and_keeps_accepting(remote, proxy, closing):
    pub = closing(PahoClient(proxy))
    pub.c.reconnect_delay_set(5, 10)  # no reconnect within the test
    disconnected = threading.Event()
    rcs = []
    pub.c.on_disconnect = lambda c, u, rc, *a: (rcs.append(rc), disconnected.set())
    raw = closing(mqttraw.RawClient(HOST, proxy.port))
    assert raw.connect("raw-before").reason == 0
    proxy.reset()
    assert proxy.active_connections == 0
    assert disconnected.wait(5), "paho saw no disconnect within 5 s of reset()"
    assert rcs and rcs[0] != 0
    raw.wait_closed(5)
    assert proxy.mode == "pass"
    again = closing(mqttraw.RawClient(HOST, proxy.port))
    assert again.connect("raw-after").reason == 0
    assert proxy.connections_accepted == 3


def test_refuse_resets_existing_and_new(remote, proxy, closing):
    raw = closing(mqttraw.RawClient(HOST, proxy.port))
    assert raw.connect("raw-before").reason == 0
    proxy.refuse()
    raw.wait_closed(5)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((HOST, proxy.port), timeout=3)
    except (ConnectionRefusedError, ConnectionResetError):
        pass  # the RST can beat connect()'s return on loopback
    else:
        with s:
            assert reset_or_closed(s, 3), "connection not reset in refuse()"
    assert time.monotonic() - t0 < 2.0
    assert proxy.connections_refused == 1 and proxy.active_connections == 0
    proxy.pass_through()
    again = closing(mqttraw.RawClient(HOST, proxy.port))
    assert again.connect("raw-after").reason == 0


def test_throttle_both_directions(remote, proxy, closing):
    sub_direct = closing(collect(remote.port, "up/#", 1))
    sub_proxied = closing(collect(proxy.port, "down/#", 1))
    pub_proxied = closing(PahoClient(proxy))
    pub_direct = closing(PahoClient(remote))
    payload = os.urandom(40000)
    proxy.throttle(20000)
    t0 = time.monotonic()
    pub_proxied.c.publish("up/big", payload, 1)
    pub_direct.c.publish("down/big", payload, 1)
    assert sub_direct.wait_count(1, 10)[0].payload == payload
    up_s = time.monotonic() - t0
    assert sub_proxied.wait_count(1, 10)[0].payload == payload
    down_s = time.monotonic() - t0
    assert up_s >= 1.5 and down_s >= 1.5, (up_s, down_s)
    assert up_s < 6 and down_s < 6, (up_s, down_s)

    proxy.pass_through()
    t0 = time.monotonic()
    pub_proxied.publish("up/fast", payload, qos=1)
    sub_direct.wait_count(2, 5)
    assert time.monotonic() - t0 < 1.5


# -- FaultProxy alone

def test_connection_limit(closing):
    sink = closing(Sink())
    proxy = closing(FaultProxy(HOST, sink.port))
    socks = [closing(socket.create_connection((HOST, proxy.port), timeout=3))
             for _ in range(MAX_CONNECTIONS)]
    wait_for(lambda: proxy.active_connections == MAX_CONNECTIONS, 5,
             what="%d proxied connections" % MAX_CONNECTIONS)
    extra = closing(socket.create_connection((HOST, proxy.port), timeout=3))
    assert reset_or_closed(extra, 3), "connection over the limit not reset"
    assert proxy.connections_refused == 1
    assert proxy.connections_accepted == MAX_CONNECTIONS + 1
    assert len(socks) == MAX_CONNECTIONS


def test_half_close_passes_fin_after_data(closing):
    srv = closing(socket.socket())
    srv.bind((HOST, 0))
    srv.listen(1)
    result = []

    def server():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            n = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                n += len(data)
            conn.sendall(b"got %d" % n)
        result.append(n)

    t = threading.Thread(target=server, daemon=True)
    t.start()
    proxy = closing(FaultProxy(HOST, srv.getsockname()[1]))
    with socket.create_connection((HOST, proxy.port), timeout=5) as c:
        c.sendall(b"z" * 300000)
        c.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            data = c.recv(100)
            if not data:
                break
            reply += data
    t.join(5)
    assert reply == b"got 300000" and result == [300000]
    assert proxy.bytes_up == 300000 and proxy.bytes_down == len(reply)
    wait_for(lambda: proxy.active_connections == 0, 2, what="the finished pair to close")


def test_close_stops_thread_and_sockets(closing):
    sink = closing(Sink())
    proxy = FaultProxy(HOST, sink.port)
    port = proxy.port
    c = closing(socket.create_connection((HOST, port), timeout=3))
    proxy.wait_connections(1, 5)
    proxy.pause()
    proxy.close()
    assert not [t for t in threading.enumerate() if t.name == "FaultProxy-%d" % port]
    assert reset_or_closed(c, 3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=3).close()
    with pytest.raises(RuntimeError):
        proxy.pass_through()
    proxy.close()  # idempotent


def test_context_manager_and_mode_during_pause(closing):
    """A connection accepted during pause reaches the target only after pass_through()."""
    srv = closing(socket.socket())
    srv.bind((HOST, 0))
    srv.listen(4)
    srv.settimeout(0.5)
    with FaultProxy(HOST, srv.getsockname()[1]) as proxy:
        proxy.pause()
        c = closing(socket.create_connection((HOST, proxy.port), timeout=3))
        c.sendall(b"early")
        proxy.wait_connections(1, 5)
        with pytest.raises(socket.timeout):
            srv.accept()[0].close()
        proxy.pass_through()
        srv.settimeout(5)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            assert conn.recv(100) == b"early"
    assert reset_or_closed(c, 3)


# -- RemoteMosquitto

def test_persistent_session_survives_restart(tmp_path, closing):
    m = closing(RemoteMosquitto(tmp_path / "remote", persistence=True).start())
    port = m.port
    sub = collect(m.port, "p/#", 1, "persist-sub", clean=False)
    sub.stop()
    pub = closing(PahoClient(m))
    pub.publish("p/queued", b"queued-while-offline", qos=1)
    pub.close()
    first_pid = m.pid
    m.restart()
    assert m.port == port and m.pid != first_pid
    assert os.path.exists(os.path.join(m.data_dir, "mosquitto.db"))
    sub = closing(collect(m.port, "p/#", 1, "persist-sub", clean=False))
    assert sub.session_present
    got = sub.wait_count(1, 5)
    assert (got[0].topic, got[0].payload, got[0].qos) == ("p/queued", b"queued-while-offline", 1)
    assert "persist-sub" in m.log_text()


def test_kill_then_start_again(tmp_path, closing):
    m = closing(RemoteMosquitto(tmp_path / "remote"))
    with m:
        pid = m.pid
        assert m.kill() == -9
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not m.running()
        m.start()
        assert m.pid != pid
        sub = closing(collect(m.port, "k/#", 0))
        pub = closing(PahoClient(m))
        pub.publish("k/1", b"after-kill", qos=0)
        assert sub.wait_count(1, 5)[0].payload == b"after-kill"
        sub.stop()
        pub.close()
        pid = m.pid
    assert m.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "===== start #2" in m.log_text()
