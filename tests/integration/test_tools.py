"""Integration tests of `harbormq pub | sub | conn | bench` against a real Mosquitto.

The tools are clients, so the peer is Debian's Mosquitto on a free loopback port; nothing
here depends on timing beyond generous deadlines.
"""
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("HARBORMQ_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "harbormq"))
MOSQUITTO = "/usr/sbin/mosquitto"


def tools_available():
    try:
        return subprocess.run([BIN, "pub", "--help"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not tools_available() or not os.path.exists(MOSQUITTO),
                                reason="harbormq tools or mosquitto not available")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mosquitto(tmp, extra=""):
    port = free_port()
    conf = os.path.join(tmp, f"mosquitto-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\n{extra}\nlog_dest none\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("mosquitto did not start")


@pytest.fixture()
def broker():
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_mosquitto(tmp, "allow_anonymous true")
        yield port
        proc.terminate()
        proc.wait(timeout=10)


def run(*args, stdin=None, timeout=30):
    return subprocess.run([BIN, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=timeout)


def start_sub(port, *args):
    return subprocess.Popen([BIN, "sub", "-p", str(port), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("cmd", [["pub"], ["sub"], ["conn"], ["bench"], ["bench", "pub"], ["bench", "sub"],
                                 ["bench", "conn"]])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0
    assert "Options" in r.stdout or "OPTIONS" in r.stdout


def test_retained_round_trip_with_v5_properties(broker):
    r = run("pub", "-p", broker, "-t", "t/props", "-m", "hello", "-r", "-q", "1", "-V", "5", "--user-property", "k=v",
            "--content-type", "text/plain")
    assert r.returncode == 0, r.stderr
    r = run("sub", "-p", broker, "-t", "t/#", "-V", "5", "-vv", "-C", "1")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("t/props [")
    assert "retain=1" in line and "user-property:k=v" in line and "content-type=text/plain" in line
    assert line.endswith("] hello")


def test_stdin_lines_and_count(broker):
    sub = start_sub(broker, "-t", "lines", "-q", "2", "-C", "3", "-v")
    # The subscriber's readiness is not observable from outside, so publish the three lines
    # again until it has exited with -C 3 (a late start only loses whole earlier rounds).
    deadline = time.monotonic() + 20
    out = ""
    while time.monotonic() < deadline and sub.poll() is None:
        r = run("pub", "-p", broker, "-t", "lines", "-l", "-q", "2", stdin="a\nb\nc\n")
        assert r.returncode == 0, r.stderr
        try:
            out, _ = sub.communicate(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
    if sub.poll() is None:
        sub.kill()
        pytest.fail("subscriber did not receive 3 messages")
    assert sub.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 3 and set(lines) <= {"lines a", "lines b", "lines c"}


def test_connection_refused_exit_code():
    r = run("pub", "-p", free_port(), "-t", "a", "-m", "x")
    assert r.returncode == 2
    assert "refused" in r.stderr.lower()


def test_wait_timeout_exit_code(broker):
    r = run("sub", "-p", broker, "-t", "nothing/here", "-W", "0.5")
    assert r.returncode == 4
    assert "timed out" in r.stderr


def test_connack_refused_exit_code():
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_mosquitto(tmp, "allow_anonymous false")
        try:
            r = run("pub", "-p", port, "-t", "a", "-m", "x")
            assert r.returncode == 3
            assert "CONNACK" in r.stderr
            r5 = run("pub", "-p", port, "-t", "a", "-m", "x", "-V", "5")
            assert r5.returncode == 3
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_usage_errors():
    assert run("pub", "-t", "a").returncode == 1  # no message source
    assert run("pub", "-t", "a/#", "-m", "x").returncode == 1  # wildcard in topic name
    assert run("bench", "pub", "-s", "4").returncode == 1  # payload below the stamp


def test_bench_pub_sub_counts_every_message(broker):
    with tempfile.TemporaryDirectory() as tmp:
        ready, sub_json, pub_json = (os.path.join(tmp, n) for n in ("ready", "sub.json", "pub.json"))
        sub = subprocess.Popen([BIN, "bench", "sub", "-p", str(broker), "-c", "2", "-t", "b/#", "-q", "1",
                                "-L", "2000", "--duration", "60", "--ready-file", ready, "--json", sub_json],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline and sub.poll() is None:
            time.sleep(0.05)
        assert os.path.exists(ready)
        r = run("bench", "pub", "-p", broker, "-c", "4", "-t", "b/%i", "-q", "1", "-L", "250", "-s", "64",
                "--json", pub_json, timeout=60)
        assert r.returncode == 0, r.stderr
        out, err = sub.communicate(timeout=60)
        assert sub.returncode == 0, err
        pub, res = json.load(open(pub_json)), json.load(open(sub_json))
        assert pub["sent"] == 1000 and pub["acked"] == 1000
        assert res["unique"] == 2000 and res["duplicates"] == 0 and res["gaps"] == 0
        assert len(res["publishers"]) == 4
        assert res["latency_ms"]["count"] == 2000
        assert "latency" in out


def test_bench_sub_idle_ends_when_no_message_ever_arrives(make_broker):
    # --idle counts from the end of setup while nothing has arrived: a subscriber with no
    # publisher must stop after about a second instead of running until Ctrl-C.
    b = make_broker().port
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "sub.json")
        started = time.monotonic()
        r = run("bench", "sub", "-p", b, "-c", "2", "-t", "silent/#", "--idle", "1", "--quiet",
                "--json", out_json, timeout=20)
        elapsed = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        assert 1.0 <= elapsed < 10, elapsed
        res = json.load(open(out_json))
        assert res["ready"] == 2 and res["unique"] == 0, res


def test_conn_reports_connections(broker):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "conn.json")
        r = run("conn", "-p", broker, "-c", "50", "--duration", "0.2", "--json", out)
        assert r.returncode == 0, r.stderr
        res = json.load(open(out))
        assert res["connected"] == 50 and res["connect_failed"] == 0
        assert res["connect_time_ms"]["count"] == 50


def test_bench_conn_failure_exit_code():
    r = run("bench", "conn", "-p", free_port(), "-c", "3", "--duration", "0.1")
    assert r.returncode == 2


def test_bench_pub_gives_up_when_acknowledgements_stop(make_broker):
    # A full store (disk_cache_size reached) makes the broker withhold 3.1.1 PUBACKs; the
    # benchmark must end after --timeout with an error instead of waiting forever.
    b = make_broker(persistence=True, extra_conf="sqlite { disk_cache_size = 20 }").port
    r = run("bench", "sub", "-p", b, "-i", "held", "--no-clean", "-q", "1", "-t", "full/t",
            "--subscribe-only", "--quiet")
    assert r.returncode == 0, r.stderr
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "pub.json")
        started = time.monotonic()
        r = run("bench", "pub", "-p", b, "-q", "1", "-t", "full/t", "-L", "500", "--timeout", "1",
                "--json", out_json, timeout=30)
        assert time.monotonic() - started < 15
        assert r.returncode == 4, r.stderr  # timed out
        out = r.stdout + r.stderr
        assert "no acknowledgement for 1 s" in out, out
        res = json.load(open(out_json))
        assert 0 < res["acked"] < 500, res
        assert res["error_count"] >= 1
