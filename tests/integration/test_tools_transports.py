"""`harbormq pub | sub | bench` over TLS (--cafile, mqtts://) against a HarborMQ listeners.ssl,
over WebSocket (--ws PATH, ws://) against a HarborMQ listeners.ws, and over both (wss://)
against a listeners.wss; a client certificate (--cert/--key) for verify_peer. Certificates come from test_tls's Pki (openssl command line)."""

import json
import os
import subprocess

import pytest

from broker_harness import HARBORMQ_BIN
from helpers import HOST, free_port, is_mosquitto, wait_for
from test_tls import Pki, ssl_section

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's listeners.ssl and listeners.ws")

WS_PATH = "/mqtt"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(make_broker, pki):
    """A broker with TLS (b.tls_port), WebSocket (b.ws_port) and WebSocket-over-TLS
    (b.wss_port) listeners beside TCP."""
    tls_port, ws_port, wss_port = free_port(), free_port(), free_port()
    conf = ssl_section(tls_port, pki.server[0], pki.server[1])
    conf += 'listeners.ws { bind = "%s:%d%s" }\n' % (HOST, ws_port, WS_PATH)
    conf += 'listeners.wss { bind = "%s:%d%s" }\n' % (HOST, wss_port, WS_PATH)
    b = make_broker(extra_conf=conf)
    b.tls_port, b.ws_port, b.wss_port = tls_port, ws_port, wss_port
    wait_for(lambda: "ssl %s:%d" % (HOST, tls_port) in b.log_text(), 10, what="the ssl listener's ready line")
    return b


def tool(*args, timeout=30):
    return subprocess.run([HARBORMQ_BIN, *[str(a) for a in args]], capture_output=True, timeout=timeout)


def round_trip(sub_args, pub_args, payload):
    """sub -C 1 (QoS 1) started first, pub once sub has its SUBACK; returns sub's stdout. The
    arguments give the connection and the topic (-t, or -L's)."""
    sub = subprocess.Popen([HARBORMQ_BIN, "sub", *[str(a) for a in sub_args], "-C", "1", "-W", "20",
                            "-q", "1", "-v", "-d"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # -d prints the SUBACK once the subscription is in place.
        wait_for(lambda: sub.poll() is not None or b"SUBACK" in read_so_far(sub), 20, what="sub's SUBACK")
        r = tool("pub", *pub_args, "-m", payload, "-q", "1")
        assert r.returncode == 0, r.stderr
        out, err = sub.communicate(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.communicate()
    assert sub.returncode == 0, err
    return out


_partial = {}


def read_so_far(proc):
    """stderr read so far without blocking (the pipe is set non-blocking on first use)."""
    fd = proc.stderr.fileno()
    if proc.pid not in _partial:
        os.set_blocking(fd, False)
        _partial[proc.pid] = b""
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        chunk = b""
    _partial[proc.pid] += chunk or b""
    return _partial[proc.pid]


def test_pub_sub_over_tls_with_cafile(broker, pki):
    common = ["-h", HOST, "-p", broker.tls_port, "--cafile", pki.ca[0]]
    out = round_trip(common + ["-t", "tls/a"], common + ["-t", "tls/a"], "over-tls")
    assert out == b"tls/a over-tls\n"


def test_pub_sub_over_mqtts_url(broker, pki):
    url = "mqtts://%s:%d/tls/url" % (HOST, broker.tls_port)
    out = round_trip(["-L", url, "--cafile", pki.ca[0]], ["-L", url, "--cafile", pki.ca[0]], "via-url")
    assert out == b"tls/url via-url\n"


def test_tls_refusals(broker, pki):
    # A CA that did not sign the broker's certificate: the handshake fails, exit code 1.
    r = tool("pub", "-h", HOST, "-p", broker.tls_port, "--cafile", pki.other_ca[0], "-t", "x", "-m", "y")
    assert r.returncode != 0
    assert b"certificate verify failed" in r.stderr, r.stderr
    # --insecure (no host name check) still verifies the chain.
    r = tool("pub", "-h", HOST, "-p", broker.tls_port, "--cafile", pki.other_ca[0], "--insecure", "-t", "x",
             "-m", "y")
    assert r.returncode != 0 and b"certificate verify failed" in r.stderr, r.stderr
    r = tool("pub", "-h", HOST, "-p", broker.tls_port, "--cafile", pki.ca[0], "--insecure", "-t", "x", "-m", "y")
    assert r.returncode == 0, r.stderr
    r = tool("pub", "-h", HOST, "-p", broker.tls_port, "--cafile", "/nonexistent.pem", "-t", "x", "-m", "y")
    assert r.returncode != 0 and b"nonexistent.pem" in r.stderr, r.stderr


def test_pub_sub_over_websocket(broker):
    common = ["-h", HOST, "-p", broker.ws_port, "--ws", WS_PATH]
    out = round_trip(common + ["-t", "ws/a"], ["-L", "ws://%s:%d/ws/a" % (HOST, broker.ws_port)], "over-ws")
    assert out == b"ws/a over-ws\n"
    # A path the listener does not serve: the upgrade is refused with 404.
    r = tool("pub", "-h", HOST, "-p", broker.ws_port, "--ws", "/other", "-t", "x", "-m", "y")
    assert r.returncode != 0 and b"404" in r.stderr, r.stderr


def test_pub_sub_over_wss_url(broker, pki):
    url = "wss://%s:%d/wss/a" % (HOST, broker.wss_port)
    out = round_trip(["-L", url, "--cafile", pki.ca[0]], ["-L", url, "--cafile", pki.ca[0]], "over-wss")
    assert out == b"wss/a over-wss\n"


def test_client_certificate_for_verify_peer(make_broker, pki):
    port = free_port()
    b = make_broker(extra_conf=ssl_section(port, pki.server[0], pki.server[1], cacertfile=pki.ca[0],
                                           verify_peer=True, fail_if_no_peer_cert=True))
    wait_for(lambda: "ssl %s:%d" % (HOST, port) in b.log_text(), 10, what="the ssl listener's ready line")
    common = ["-h", HOST, "-p", port, "--cafile", pki.ca[0], "-t", "mtls/a"]
    r = tool("pub", *common, "-m", "x")
    assert r.returncode != 0, r.stderr  # no certificate: refused at the handshake
    r = tool("pub", *common, "--cert", pki.client[0], "--key", pki.client[1], "-m", "x")
    assert r.returncode == 0, r.stderr


def bench_pair(port, transport, tmp_path, count=2000):
    """bench sub (1 client) then bench pub (4 × count QoS 1 messages) over `transport`;
    returns the two JSON reports."""
    ready, sub_json, pub_json = (str(tmp_path / n) for n in ("ready", "sub.json", "pub.json"))
    sub = subprocess.Popen([HARBORMQ_BIN, "bench", "sub", "-p", str(port), *transport, "-c", "1", "-t", "bt/#",
                            "-q", "1", "--idle", "3", "--duration", "60", "--ready-file", ready,
                            "--json", sub_json, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.exists(ready) or sub.poll() is not None, 20, what="bench sub ready")
        assert os.path.exists(ready), sub.communicate()[1]
        r = subprocess.run([HARBORMQ_BIN, "bench", "pub", "-p", str(port), *transport, "-c", "4", "-t", "bt/%i",
                            "-q", "1", "-L", str(count), "-s", "64", "--json", pub_json, "--quiet"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        _, err = sub.communicate(timeout=60)
        assert sub.returncode == 0, err
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.communicate()
    with open(sub_json) as f, open(pub_json) as g:
        return json.load(f), json.load(g)


@pytest.mark.parametrize("transport", ["tls", "ws"])
def test_bench_counts_every_message(broker, pki, tmp_path, transport):
    port, opts = {"tls": (broker.tls_port, ["--cafile", pki.ca[0]]), "ws": (broker.ws_port, ["--ws", WS_PATH])}[transport]
    sub, pub = bench_pair(port, opts, tmp_path)
    assert pub["acked"] == 4 * 2000 and pub["error_count"] == 0, pub
    assert sub["unique"] == 4 * 2000 and sub["gaps"] == 0 and sub["duplicates"] == 0, sub
