"""`harbormq pub | sub` with mosquitto_pub/sub's options: -D, -F, -N, -T, -U,
--retained-only, -L and --unix.

Against a real HarborMQ broker (make_broker), with paho-mqtt and Debian's mosquitto_sub as
the reference clients; --unix against a real Mosquitto listening on a Unix socket (HarborMQ
has no Unix listener). Subscriber readiness is not observable from outside, so most tests
use retained messages (delivered on subscribe) or wait for a first line of output.
"""
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from helpers import free_port, unique_id, wait_for

BIN = os.environ.get("HARBORMQ_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "harbormq"))
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_SUB = shutil.which("mosquitto_sub")

pytestmark = pytest.mark.harbormq_only


def run(*args, stdin=None, timeout=20):
    return subprocess.run([BIN, *map(str, args)], input=stdin, capture_output=True, timeout=timeout)


def run_ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stderr.decode(errors="replace"))
    return r


def publish_retained(port, topic, payload, *extra):
    run_ok("pub", "-p", port, "-t", topic, "-m", payload, "-r", "-q", "1", *extra)


class LineReader:
    """Reads a process's stdout lines on a thread, so a test can wait with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line)

    def take(self, n, timeout=10.0):
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                got.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        return got


def start_sub(port, *args):
    return subprocess.Popen([BIN, "sub", "-p", str(port), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc, timeout=10):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("process %d did not exit; stderr: %s" % (proc.pid, err.decode(errors="replace")))
    return proc.returncode, out, err


# ---- -D ---------------------------------------------------------------------------------

def test_d_publish_properties_reach_a_paho_v5_subscriber(make_broker, paho_client):
    b = make_broker()
    sub = paho_client(b, version=5)
    sub.subscribe("d/props", qos=1)
    run_ok("pub", "-p", b.port, "-t", "d/props", "-m", "hello", "-q", "1",
           "-D", "publish", "user-property", "a", "b",
           "-D", "publish", "user-property", "a", "second",
           "-D", "publish", "content-type", "text/plain",
           "-D", "publish", "response-topic", "r/t",
           "-D", "publish", "correlation-data", "x1",
           "-D", "publish", "payload-format-indicator", "1",
           "-D", "publish", "message-expiry-interval", "100",
           "-D", "connect", "user-property", "ck", "cv")  # -D alone makes it MQTT 5
    msg = sub.expect(1)[0]
    assert msg.payload == b"hello"
    p = msg.properties
    assert p.UserProperty == [("a", "b"), ("a", "second")]
    assert p.ContentType == "text/plain"
    assert p.ResponseTopic == "r/t"
    assert p.CorrelationData == b"x1"
    assert p.PayloadFormatIndicator == 1
    assert 0 < p.MessageExpiryInterval <= 100


def test_d_publish_topic_alias_sends_topic_once(make_broker, paho_client):
    b = make_broker()  # max_topic_alias = 10
    sub = paho_client(b, version=5)
    sub.subscribe("d/alias", qos=1)
    run_ok("pub", "-p", b.port, "-t", "d/alias", "-l", "-q", "1", "-D", "publish", "topic-alias", "3",
           stdin=b"one\ntwo\nthree\n")
    got = sub.expect(3)
    assert [(m.topic, m.payload) for m in got] == [("d/alias", b"one"), ("d/alias", b"two"),
                                                   ("d/alias", b"three")]
    r = run("pub", "-p", b.port, "-t", "d/alias", "-m", "x", "-D", "publish", "topic-alias", "11")
    assert r.returncode == 6 and b"Topic Alias Maximum (10)" in r.stderr, r.stderr


def test_d_subscribe_subscription_identifier_and_connect_session_expiry(make_broker):
    b = make_broker()
    publish_retained(b.port, "d/sid", "v")
    r = run_ok("sub", "-p", b.port, "-t", "d/sid", "-C", "1", "-F", "%S|%t|%p",
               "-D", "subscribe", "subscription-identifier", "42",
               "-D", "subscribe", "user-property", "sk", "sv")
    assert r.stdout == b"42|d/sid|v\n"

    # -D connect session-expiry-interval keeps the session after the disconnect ...
    cid = unique_id("dsess")
    run_ok("sub", "-p", b.port, "-i", cid, "-c", "-t", "d/none", "-E",
           "-D", "connect", "session-expiry-interval", "60")
    paho_c = paho.Client(cid, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 60
    present = []
    paho_c.on_connect = lambda c, u, flags, rc, p=None: present.append(flags.get("session present"))
    paho_c.connect(b.host, b.port, 30, clean_start=False, properties=props)
    paho_c.loop_start()
    try:
        wait_for(lambda: present, 5, what="CONNACK")
        assert present[0], "session should have been kept (session expiry 60)"
    finally:
        paho_c.disconnect()
        paho_c.loop_stop()

    # ... and -D disconnect session-expiry-interval 0 ends it at the DISCONNECT.
    cid2 = unique_id("dsess0")
    run_ok("sub", "-p", b.port, "-i", cid2, "-c", "-t", "d/none", "-E",
           "-D", "connect", "session-expiry-interval", "60",
           "-D", "disconnect", "session-expiry-interval", "0")
    r = run_ok("sub", "-p", b.port, "-i", cid2, "-c", "-t", "d/none", "-E", "-V", "5", "-x", "60", "-d")
    assert b"session-present=0" in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["-V", "3.1.1", "-D", "connect", "receive-maximum", "5"], "-D only valid with MQTT v5"),
    (["-D", "frobnicate", "receive-maximum", "5"], "Invalid command given in --property argument."),
    (["-D", "connect", "colour", "5"], "Invalid property name given in --property argument."),
    (["-D", "publish", "receive-maximum", "5"], "receive-maximum property not allowed for publish"),
    (["-D", "connect", "user-property", "k"], "not enough arguments specified"),
    (["-D", "connect", "receive-maximum", "70000"], "Property value (70000) out of range"),
])
def test_d_usage_errors_exit_1(make_broker, args, message):
    b = make_broker()
    r = run("pub", "-p", b.port, "-t", "a", "-m", "x", *args)
    assert r.returncode == 1, r.stderr
    assert message in r.stderr.decode(), r.stderr


# ---- -F, -N, -v --------------------------------------------------------------------------

FORMATS = [
    r"%t|%p|%q|%r|%l|%m|%x|%X|%P|%C|%R|%D|%F|%S|%%|@@|\t|%10t|%-10t|%5.2t|%08l|%4p|%-6p|%5A",
    r"%j",
    r"%J",
]


def mosquitto_sub_output(port, args, timeout=10):
    r = subprocess.run([MOSQUITTO_SUB, "-p", str(port), *map(str, args)], capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def strip_time(out):
    return re.sub(rb'"tst":"[^"]*"', b'"tst":"T"', out)


@pytest.mark.skipif(MOSQUITTO_SUB is None, reason="mosquitto_sub not installed")
@pytest.mark.parametrize("fmt", FORMATS)
def test_format_output_matches_mosquitto_sub(make_broker, fmt):
    b = make_broker()
    publish_retained(b.port, "f/plain", "hello")
    publish_retained(b.port, "f/props", 'he"l\\lo\ttab \u00e9', "-V", "5",
                     "-D", "publish", "user-property", "k1", "v1", "-D", "publish", "user-property", "k2", "v2",
                     "-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "rt",
                     "-D", "publish", "correlation-data", "cd", "-D", "publish", "payload-format-indicator", "1")
    publish_retained(b.port, "f/json", '{"a": 1.0, "b": [1, 2, "x"], "c": 1e5, "d": {"e": null}}')
    common = ["-t", "f/#", "-C", "3", "-V", "5", "-D", "subscribe", "subscription-identifier", "9", "-F", fmt]
    ours = run_ok("sub", "-p", b.port, *common)
    theirs, theirs_err = mosquitto_sub_output(b.port, common)
    # Retained messages come in the broker's order for both; compare as sets of lines.
    assert sorted(strip_time(ours.stdout).split(b"\n")) == sorted(strip_time(theirs).split(b"\n"))
    assert ours.stdout.count(b"\n") == 3
    assert ours.stderr == theirs_err  # %J: the same "not valid JSON" lines for the two non-JSON payloads


@pytest.mark.skipif(MOSQUITTO_SUB is None, reason="mosquitto_sub not installed")
def test_no_newline_and_verbose_interplay_match_mosquitto_sub(make_broker):
    b = make_broker()
    publish_retained(b.port, "n/a", "ab")
    for args in (["-N"], ["-N", "-v"], ["-v", "-F", "%p;"], ["-N", "-F", "%t=%p;"]):
        common = ["-t", "n/a", "-C", "1", *args]
        ours = run_ok("sub", "-p", b.port, *common).stdout
        theirs, _ = mosquitto_sub_output(b.port, common)
        assert ours == theirs, args
    assert run_ok("sub", "-p", b.port, "-t", "n/a", "-C", "1", "-N").stdout == b"ab"


def test_format_errors_exit_1():
    for fmt, message in (("%z", b"Invalid format specifier 'z'."), ("abc%", b"Incomplete format specifier."),
                         ("\\q", b"Invalid escape specifier 'q'.")):
        r = run("sub", "-t", "a", "-F", fmt)
        assert r.returncode == 1 and message in r.stderr, (fmt, r.stderr)


# ---- -T, --retained-only, -U -----------------------------------------------------------

def test_filter_out_suppresses_matching_topics_and_does_not_count(make_broker):
    b = make_broker()
    for topic in ("t/1", "t/secret/x", "t/secret", "t/2"):
        publish_retained(b.port, topic, topic)
    # -C counts only printed messages (as mosquitto_sub), so -C 2 ends after t/1 and t/2.
    r = run_ok("sub", "-p", b.port, "-t", "t/#", "-T", "t/secret/#", "-C", "2", "-v")
    assert sorted(r.stdout.decode().splitlines()) == ["t/1 t/1", "t/2 t/2"]
    if MOSQUITTO_SUB:
        theirs, _ = mosquitto_sub_output(b.port, ["-t", "t/#", "-T", "t/secret/#", "-C", "2", "-v"])
        assert sorted(theirs.decode().splitlines()) == ["t/1 t/1", "t/2 t/2"]


def test_retained_only_prints_retained_and_exits_at_the_first_fresh_message(make_broker):
    b = make_broker()
    publish_retained(b.port, "ro/1", "old1")
    publish_retained(b.port, "ro/2", "old2")
    sub = start_sub(b.port, "-t", "ro/#", "--retained-only", "-v", "-q", "1")
    reader = LineReader(sub)
    try:
        first = reader.take(2)
        assert sorted(first) == [b"ro/1 old1\n", b"ro/2 old2\n"]
        # Subscribed (the retained ones came); a fresh message ends it, unprinted.
        run_ok("pub", "-p", b.port, "-t", "ro/1", "-m", "fresh", "-q", "1")
        rc, _, err = finish(sub)
        assert rc == 0, err
        assert reader.take(1, timeout=1) == []
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def test_unsubscribe_edits_a_persistent_session(make_broker):
    b = make_broker()
    cid = unique_id("unsub")
    run_ok("sub", "-p", b.port, "-i", cid, "-c", "-q", "1", "-t", "u/a", "-t", "u/b", "-E")
    run_ok("sub", "-p", b.port, "-i", cid, "-c", "-U", "u/a", "-E")  # -U on its own
    # Offline: u/a first, then u/b. Only u/b may be queued for the session now.
    run_ok("pub", "-p", b.port, "-t", "u/a", "-m", "A", "-q", "1")
    run_ok("pub", "-p", b.port, "-t", "u/b", "-m", "B", "-q", "1")
    r = run_ok("sub", "-p", b.port, "-i", cid, "-c", "-q", "1", "-t", "u/b", "-C", "1", "-v")
    assert r.stdout == b"u/b B\n"


def test_unsubscribe_is_processed_after_the_subscriptions(make_broker):
    b = make_broker()
    cid = unique_id("unsub2")
    run_ok("sub", "-p", b.port, "-i", cid, "-c", "-q", "1", "-t", "v/a", "-t", "v/b", "-U", "v/a", "-E", "-V", "5",
           "-x", "60", "-D", "unsubscribe", "user-property", "why", "test")
    run_ok("pub", "-p", b.port, "-t", "v/a", "-m", "A", "-q", "1")
    run_ok("pub", "-p", b.port, "-t", "v/b", "-m", "B", "-q", "1")
    r = run_ok("sub", "-p", b.port, "-i", cid, "-c", "-q", "1", "-t", "v/b", "-C", "1", "-v", "-V", "5",
               "-x", "60")
    assert r.stdout == b"v/b B\n"


# ---- -L ------------------------------------------------------------------------------

def test_url_gives_host_port_and_topic(make_broker):
    b = make_broker()
    run_ok("pub", "-L", "mqtt://someone:pw@127.0.0.1:%d/l/one" % b.port, "-m", "via-url", "-r")
    r = run_ok("sub", "-L", "mqtt://127.0.0.1:%d/l/#" % b.port, "-C", "1", "-v")
    assert r.stdout == b"l/one via-url\n"
    # mqtts:// is TLS: the plain listener closes on the ClientHello (tests over TLS:
    # test_tools_transports.py).
    r = run("pub", "-L", "mqtts://127.0.0.1:%d/l/one" % b.port, "-m", "x")
    assert r.returncode != 0 and b"connection closed by broker" in r.stderr, r.stderr
    r = run("pub", "-L", "mqtt://127.0.0.1:%d/l/one" % free_port(), "-m", "x", "-p", str(b.port))
    assert r.returncode == 2, r.stderr  # the URL's port is used, not -p
    r = run("sub", "-L", "mqtt://127.0.0.1:%d" % b.port)
    assert r.returncode == 1 and b"topic missing" in r.stderr


# ---- --unix ----------------------------------------------------------------------------

@pytest.fixture()
def mosquitto_unix():
    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto not installed")
    tmp = tempfile.mkdtemp(prefix="hmq-unix-", dir="/tmp")
    sock = os.path.join(tmp, "mosq.sock")
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        # Started as root, mosquitto would drop to its own user, which cannot create the socket here.
        f.write("listener 0 %s\nallow_anonymous true\nlog_dest none\npersistence false\nuser root\n" % sock)
    proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 10, what="mosquitto unix socket")
        if proc.poll() is not None:
            pytest.fail("mosquitto exited instead of listening on %s" % sock)
        yield sock
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def test_unix_socket_pub_and_sub(mosquitto_unix):
    run_ok("pub", "--unix", mosquitto_unix, "-t", "x/unix", "-m", "over-unix", "-r", "-q", "1")
    r = run_ok("sub", "--unix", mosquitto_unix, "-t", "x/#", "-C", "1", "-v", "-V", "5")
    assert r.stdout == b"x/unix over-unix\n"
    if MOSQUITTO_SUB:
        theirs = subprocess.run([MOSQUITTO_SUB, "--unix", mosquitto_unix, "-t", "x/#", "-C", "1", "-v"],
                                capture_output=True, timeout=10)
        assert theirs.stdout == r.stdout
    missing = run("pub", "--unix", mosquitto_unix + ".missing", "-t", "a", "-m", "x")
    assert missing.returncode == 2 and b"unix socket" in missing.stderr
