"""MQTT bridges over TLS (`tls+mqtt-tcp://`, `mqtts://`, NanoMQ's bridge `ssl {}` keys)
against a real Mosquitto whose listener speaks TLS: QoS 1 forwarding and a remote
subscription over the encrypted link, a remote certificate from a CA we do not trust, mutual
TLS (require_certificate), the host name check (IP address and DNS name) and verify_peer =
false, fail-over from a plain server to a TLS one, a handshake the remote never answers
(mqtt.connect_timeout), and ssl files that cannot be used stopping the start.

The remote has a second, plain listener for the test's own subscribers and publishers, so
that only the bridge's link goes through TLS. Certificates: test_tls.py's Pki (openssl)."""

import socket
import subprocess

import paho.mqtt.client as paho
import pytest

from broker_harness import HARBORMQ_BIN
from helpers import HOST, free_port, read_log, unique_id, wait_for, wait_for_listener
from remote_mosquitto import RemoteMosquitto, collect
from test_bridge import publish_many
from test_tls import Pki

pytestmark = pytest.mark.harbormq_only


class TlsPki(Pki):
    """test_tls.py's CA and certificates, plus two server certificates a bridge dialling
    127.0.0.1 must refuse: one for another name, one from the CA nobody trusts."""

    def __init__(self, d):
        super().__init__(d)
        self.wrong_name = self.issue("wrong_name", "other.example", 3001, self.ca,
                                     "subjectAltName=DNS:other.example\n")
        self.foreign = self.issue("foreign", "foreign-server", 3002, self.other_ca,
                                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TlsPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_remote(tmp_path, pki):
    """Factory: tls_remote(cert=pki.server, require_certificate=False) -> a started
    Mosquitto whose `port` is TLS (CA: pki.ca) and whose `plain_port` is plain MQTT."""
    made = []

    def factory(cert=None, require_certificate=False):
        cert = cert or pki.server
        plain_port = free_port()
        lines = ["cafile %s" % pki.ca[0], "certfile %s" % cert[0], "keyfile %s" % cert[1]]
        if require_certificate:
            lines.append("require_certificate true")
        # Options after a listener line are that listener's: the plain one comes last.
        lines.append("listener %d %s" % (plain_port, HOST))
        r = RemoteMosquitto(tmp_path / ("remote%d" % len(made)), extra_lines=lines)
        r.plain_port = plain_port
        made.append(r)
        r.start()  # waits for the TLS port; the plain one opens at the same time
        wait_for_listener(r.proc, HOST, plain_port, 10, r.log_tail, r.close)
        return r

    yield factory
    for r in made:
        r.close()


def tls_bridge_conf(server, ssl_keys, subscriptions=(), hybrid=(), name="cloud"):
    ssl_lines = "\n    ".join("%s = %s" % (k, ("true" if v else "false") if isinstance(v, bool)
                                           else '"%s"' % v) for k, v in ssl_keys.items())
    return """
bridges.mqtt.%s {
  server = "%s"
  hybrid_servers = [ %s ]
  proto_ver = 4
  clientid = "%s"
  keepalive = 10s
  clean_start = false
  backoff_max = 2s
  forwards = [ { local_topic = "up/#", remote_topic = "", prefix = "edge1/", qos = 1 } ]
  subscription = [ %s ]
  ssl {
    %s
  }
}
""" % (name, server, ", ".join('"%s"' % h for h in hybrid), unique_id("tlsbridge"),
       "\n".join(subscriptions), ssl_lines)


def log_count(broker, text):
    return read_log(broker.log_path).count(text)


def wait_link_up(broker, name="cloud"):
    wait_for(lambda: log_count(broker, 'bridge "%s" connected to' % name) > 0, 15,
             what="the TLS bridge link up; log:\n" + broker.log_tail())


def wait_refusals(broker, remote, n=2, name="cloud", host=HOST):
    """Waits for n failed attempts on remote (the first and a retry after the back-off);
    returns the broker's log."""
    line = 'bridge "%s": cannot connect to %s:%d: ' % (name, host, remote.port)
    wait_for(lambda: log_count(broker, line) >= n, 20,
             what="%d refused attempts (%r); log:\n%s" % (n, line, broker.log_tail()))
    assert log_count(broker, 'bridge "%s" connected to' % name) == 0, broker.log_tail()
    return read_log(broker.log_path)


def forwards_all(broker, remote_sub, topic_fmt, n):
    """Publishes n QoS 1 messages locally; all are acknowledged and reach remote_sub (the
    first copies in order; QoS 1 may repeat one after a reconnect). Returns what arrived."""
    acked = publish_many(broker.port, topic_fmt, n)
    assert len(acked) == n
    got = remote_sub.wait_count(n, timeout=15)
    assert list(dict.fromkeys(m.payload for m in got)) == acked
    assert all(m.qos == 1 for m in got)
    remote_sub.stop()
    return got


def test_qos1_forwarded_over_mqtts_and_remote_subscription(make_broker, tls_remote, pki,
                                                           paho_client):
    remote = tls_remote()
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    subs = ['{ remote_topic = "cmd/#", local_topic = "", prefix = "fromcloud/", qos = 1 }']
    b = make_broker(extra_conf=tls_bridge_conf("mqtts://%s:%d" % (HOST, remote.port),
                                               {"cacertfile": pki.ca[0]}, subscriptions=subs))
    wait_link_up(b)
    assert 'bridge "cloud": link to %s:%d over TLSv1.' % (HOST, remote.port) in b.log_text()
    assert "the remote's certificate verified" in b.log_text()

    # (a) local -> remote, QoS 1: every acknowledged message arrives, in order.
    got = forwards_all(b, remote_sub, "up/t%d", 50)
    assert [m.topic for m in got[:50]] == ["edge1/up/t%d" % i for i in range(50)]

    # (b) remote -> local over the same TLS link.
    local_sub = paho_client(b)
    local_sub.subscribe("fromcloud/#", qos=1)
    wait_for(lambda: "Received SUBSCRIBE from" in remote.log_text(), 10,
             what="the bridge's SUBSCRIBE at the remote")
    c = paho.Client(unique_id("rpub"))
    c.connect(HOST, remote.plain_port, 30)
    c.loop_start()
    try:
        for i in range(5):
            c.publish("cmd/n%d" % i, b"c%d" % i, 1).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    msgs = local_sub.expect(5, timeout=10)
    assert [(m.topic, m.payload) for m in msgs[:5]] == [
        ("fromcloud/cmd/n%d" % i, b"c%d" % i) for i in range(5)]


def test_tls_plus_mqtt_tcp_scheme_and_fail_over_from_a_plain_server(make_broker, tls_remote,
                                                                     pki):
    remote = tls_remote()
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    dead = free_port()  # nothing listens: the plain server fails, the TLS one takes over
    b = make_broker(extra_conf=tls_bridge_conf(
        "mqtt-tcp://%s:%d" % (HOST, dead), {"cacertfile": pki.ca[0]},
        hybrid=["tls+mqtt-tcp://%s:%d" % (HOST, remote.port)]))
    wait_link_up(b)
    assert 'bridge "cloud" connected to %s:%d' % (HOST, remote.port) in read_log(b.log_path)
    forwards_all(b, remote_sub, "up/f%d", 10)


def test_certificate_from_another_ca_is_refused_and_retried(make_broker, tls_remote, pki):
    remote = tls_remote(cert=pki.foreign)
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    b = make_broker(extra_conf=tls_bridge_conf("mqtts://%s:%d" % (HOST, remote.port),
                                               {"cacertfile": pki.ca[0]}))
    publish_many(b.port, "up/x%d", 3)
    log = wait_refusals(b, remote)
    assert "TLS handshake failed: certificate verify failed" in log, log
    remote_sub.expect_no_more(0, 0.5)
    remote_sub.stop()


def test_mutual_tls_presents_our_certificate(make_broker, tls_remote, pki):
    remote = tls_remote(require_certificate=True)
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    b = make_broker(extra_conf=tls_bridge_conf(
        "mqtts://%s:%d" % (HOST, remote.port),
        {"cacertfile": pki.ca[0], "certfile": pki.client[0], "keyfile": pki.client[1]}))
    wait_link_up(b)
    forwards_all(b, remote_sub, "up/m%d", 10)


def test_mutual_tls_without_our_certificate_is_refused(make_broker, tls_remote, pki):
    remote = tls_remote(require_certificate=True)
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    b = make_broker(extra_conf=tls_bridge_conf("mqtts://%s:%d" % (HOST, remote.port),
                                               {"cacertfile": pki.ca[0]}))
    publish_many(b.port, "up/y%d", 3)
    log = wait_refusals(b, remote)
    assert "certificate required" in log, log  # Mosquitto's alert, as OpenSSL names it
    remote_sub.expect_no_more(0, 0.5)
    remote_sub.stop()


def localhost_is_loopback_v4():
    try:
        return socket.getaddrinfo("localhost", 1, 0, socket.SOCK_STREAM)[0][4][0] == HOST
    except OSError:
        return False


needs_localhost = pytest.mark.skipif(not localhost_is_loopback_v4(),
                                     reason="localhost does not resolve to 127.0.0.1 first")


@pytest.mark.parametrize("host, reason", [
    (HOST, 'IP address mismatch (expected "%s")' % HOST),
    pytest.param("localhost", 'hostname mismatch (expected "localhost")',
                 marks=needs_localhost),
])
def test_certificate_for_another_name_is_refused(make_broker, tls_remote, pki, host, reason):
    remote = tls_remote(cert=pki.wrong_name)
    b = make_broker(extra_conf=tls_bridge_conf("mqtts://%s:%d" % (host, remote.port),
                                               {"cacertfile": pki.ca[0]}))
    log = wait_refusals(b, remote, host=host)
    assert "TLS handshake failed: certificate verify failed: " + reason in log, log


@needs_localhost
def test_dns_name_is_checked(make_broker, tls_remote, pki):
    remote = tls_remote()  # pki.server: DNS:localhost and IP:127.0.0.1
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    b = make_broker(extra_conf=tls_bridge_conf("tls+mqtt-tcp://localhost:%d" % remote.port,
                                               {"cacertfile": pki.ca[0]}))
    wait_link_up(b)
    forwards_all(b, remote_sub, "up/d%d", 3)


def test_verify_peer_false_accepts_the_wrong_name_and_warns(make_broker, tls_remote, pki):
    remote = tls_remote(cert=pki.wrong_name)
    remote_sub = collect(remote.plain_port, "edge1/#", qos=1)
    b = make_broker(extra_conf=tls_bridge_conf("mqtts://%s:%d" % (HOST, remote.port),
                                               {"verify_peer": False}))
    wait_link_up(b)
    assert "bridges.mqtt.cloud.ssl.verify_peer: the remote's certificate is not verified" in \
        b.log_text(), b.log_tail()
    assert "the remote's certificate NOT verified (ssl.verify_peer = false)" in b.log_text()
    forwards_all(b, remote_sub, "up/v%d", 5)


@pytest.mark.parametrize("problem, key, named", [
    ("missing CA file", "cacertfile", "missing-ca.pem"),
    ("missing certificate", "certfile", "missing-cert.pem"),
    ("key of another certificate", "keyfile", "does not match certificate file"),
])
def test_a_file_that_cannot_be_used_stops_the_start_naming_file_line_and_key(
        tmp_path, pki, problem, key, named):
    ssl_keys = {"cacertfile": pki.ca[0], "certfile": pki.client[0], "keyfile": pki.client[1]}
    if problem == "missing CA file":
        ssl_keys["cacertfile"] = str(tmp_path / "missing-ca.pem")
    elif problem == "missing certificate":
        ssl_keys["certfile"] = str(tmp_path / "missing-cert.pem")
    else:
        ssl_keys["keyfile"] = pki.server[1]
    conf = tmp_path / "bridge.conf"
    conf.write_text('listeners.tcp { bind = "%s:%d" }\n' % (HOST, free_port()) +
                    tls_bridge_conf("mqtts://%s:%d" % (HOST, free_port()), ssl_keys))
    lines = conf.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith(key + " ="))
    try:
        r = subprocess.run([HARBORMQ_BIN, "start", "--conf", str(conf)], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("harbormq kept running with a bridge ssl file it cannot use")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "bridge.conf:%d: bridges.mqtt.cloud.ssl.%s: " % (line, key) in out, out
    assert named in out, out


def test_a_stalled_handshake_ends_at_the_connect_timeout_and_is_retried(make_broker):
    # A remote that accepts TCP and never answers the ClientHello.
    silent = socket.socket()
    silent.bind((HOST, 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        b = make_broker(connect_timeout="1s",
                        extra_conf=tls_bridge_conf("mqtts://%s:%d" % (HOST, port), {}))
        line = 'bridge "cloud": cannot connect to %s:%d: no CONNACK within ' \
            'mqtt.connect_timeout' % (HOST, port)
        wait_for(lambda: log_count(b, line) >= 2, 20,
                 what="two timed-out attempts; log:\n" + b.log_tail())
    finally:
        silent.close()
