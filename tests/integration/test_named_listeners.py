"""NanoMQ's named listeners (`listeners.tcp.<name>`, `listeners.ws.<name>`,
`listeners.ssl.<name>`, `listeners.wss.<name>`), each served like the unnamed listener of its
kind: messages cross between them, a named TLS listener serves its own certificate (a named
wss one without certificate keys serves listeners.ssl's), certificates are re-read on reload,
two listeners on one address refuse the start naming both keys, `enable = false` leaves the
port closed. paho-mqtt clients; certificates from test_tls.py's Pki (openssl CLI)."""

import contextlib
import shutil
import socket
import subprocess

import pytest

from broker_harness import HARBORMQ_BIN
from helpers import HOST, PahoClient, free_port, is_mosquitto, wait_for
from test_tls import Pki, peer_serial, ssl_section

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's named listeners")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def named(kind, name, bind, **keys):
    lines = ['bind = "%s"' % bind]
    for k, v in keys.items():
        lines.append("%s = %s" % (k, ("true" if v else "false") if isinstance(v, bool)
                                  else '"%s"' % v))
    return "listeners.%s.%s {\n  %s\n}\n" % (kind, name, "\n  ".join(lines))


def wait_ready(b):
    wait_for(lambda: " ready in " in b.log_text(), 10, what="the broker's ready line")


def reload(b):
    r = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", b.pid_path], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


@contextlib.contextmanager
def connected(*clients):
    """The PahoClients given, closed at the end of the block whatever happens."""
    try:
        yield clients
    finally:
        for c in clients:
            c.close()


def relayed(publisher, subscriber, topic, payload):
    """`subscriber` subscribes to `topic` (QoS 1), `publisher` publishes `payload` there;
    the payload of the message `subscriber` gets."""
    assert subscriber.subscribe(topic, 1) == [1]
    before = len(subscriber.messages)
    publisher.publish(topic, payload, qos=1)
    return subscriber.expect(before + 1)[before].payload


def port_open(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_message_on_a_named_tcp_listener_reaches_the_unnamed_and_a_named_tls_one(
        make_broker, pki):
    tcp_port, tls_port = free_port(), free_port()
    b = make_broker(extra_conf=named("tcp", "extra", "%s:%d" % (HOST, tcp_port)) +
                    named("ssl", "secure", "%s:%d" % (HOST, tls_port),
                          certfile=pki.server2[0], keyfile=pki.server2[1]))
    wait_ready(b)
    log = b.log_text()
    assert "listener listeners.tcp.extra: tcp %s:%d" % (HOST, tcp_port) in log, log
    assert "listener listeners.ssl.secure: ssl %s:%d" % (HOST, tls_port) in log, log
    assert "listener listeners.tcp: tcp %s:%d" % (HOST, b.port) in log, log
    secure = PahoClient(b, 5, port=tls_port, tls={"ca_certs": pki.ca[0]})
    with connected(PahoClient(b, 4), secure, PahoClient(b, 5, port=tcp_port)) as (
            plain, secure, publisher):
        assert relayed(publisher, plain, "named/t", b"one") == b"one"
        assert relayed(publisher, secure, "named/t", b"two") == b"two"
        # And back: the unnamed listener's publisher reaches the named TLS one.
        assert relayed(plain, secure, "named/t", b"three") == b"three"


def test_a_named_tls_listener_serves_its_own_certificate(make_broker, pki):
    ssl_port, named_port, wss_port, own_wss_port = (free_port() for _ in range(4))
    b = make_broker(extra_conf=ssl_section(ssl_port, *pki.server) +
                    named("ssl", "other", "%s:%d" % (HOST, named_port),
                          certfile=pki.server2[0], keyfile=pki.server2[1]) +
                    named("wss", "inherits", "%s:%d/mqtt" % (HOST, wss_port)) +
                    named("wss", "own", "%s:%d/mqtt" % (HOST, own_wss_port),
                          certfile=pki.server2[0], keyfile=pki.server2[1]))
    wait_ready(b)
    assert peer_serial(ssl_port, pki) == 1001
    assert peer_serial(named_port, pki) == 1002
    # A named wss without certificate keys serves listeners.ssl's, as the unnamed wss does;
    # one with its own serves that.
    assert peer_serial(wss_port, pki) == 1001
    assert peer_serial(own_wss_port, pki) == 1002
    wss = PahoClient(b, 5, transport="websockets", port=wss_port, ws_path="/mqtt",
                     tls={"ca_certs": pki.ca[0]})
    with connected(PahoClient(b, 4), wss) as (sub, wss):
        assert relayed(wss, sub, "named/wss", b"over wss") == b"over wss"


def test_a_named_websocket_listener(make_broker):
    ws_port = free_port()
    b = make_broker(extra_conf=named("ws", "web", "%s:%d/ws" % (HOST, ws_port)))
    wait_ready(b)
    assert "listener listeners.ws.web: ws %s:%d/ws" % (HOST, ws_port) in b.log_text()
    ws = PahoClient(b, 4, transport="websockets", port=ws_port, ws_path="/ws")
    with connected(ws, PahoClient(b, 5)) as (ws, sub):
        assert relayed(sub, ws, "named/ws", b"to the websocket") == b"to the websocket"
        assert relayed(ws, sub, "named/ws", b"from the websocket") == b"from the websocket"


def test_two_listeners_on_one_address_refuse_the_start_naming_both_keys(make_broker):
    b = make_broker(start=False)
    b.extra_conf = named("tcp", "dup", "%s:%d" % (HOST, b.port))
    b.write_config()
    b.spawn()
    assert b.wait_exit() != 0
    text = b.log_text()
    assert "listeners.tcp.dup.bind" in text, text
    assert "is also the address of listeners.tcp.bind" in text, text
    assert b.conf_path + ":" in text, text


def test_enable_false_leaves_the_port_closed(make_broker):
    off_port, on_port = free_port(), free_port()
    b = make_broker(extra_conf=named("tcp", "off", "%s:%d" % (HOST, off_port), enable=False) +
                    named("ssl", "off", "%s:%d" % (HOST, free_port()), enable=False) +
                    named("tcp", "on", "%s:%d" % (HOST, on_port)))
    wait_ready(b)
    assert port_open(on_port)
    assert not port_open(off_port)
    assert "listeners.tcp.off" not in b.log_text()


def test_reload_reads_a_named_listeners_certificate_again(make_broker, pki, tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(pki.server[0], cert)
    shutil.copy(pki.server[1], key)
    tls_port = free_port()
    conf = named("ssl", "live", "%s:%d" % (HOST, tls_port), certfile=cert, keyfile=key)
    b = make_broker(extra_conf=conf)
    wait_ready(b)
    assert peer_serial(tls_port, pki) == 1001
    old = PahoClient(b, 4, port=tls_port, tls={"ca_certs": pki.ca[0]})
    with connected(old):
        shutil.copy(pki.server2[0], cert)
        shutil.copy(pki.server2[1], key)
        # A listener added to the file needs a restart, and reload says so.
        added_port = free_port()
        b.extra_conf = conf + named("tcp", "added", "%s:%d" % (HOST, added_port))
        b.write_config()
        rc, out = reload(b)
        assert rc == 0, out
        assert "listeners.ssl.live: certificate, key and CAs read again" in out, out
        assert "needs a restart: listeners.tcp.added" in out, out
        assert peer_serial(tls_port, pki) == 1002
        assert not port_open(added_port)
        assert old.c.is_connected()

        # A broken certificate refuses the whole reload; the running one stays.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        rc, out = reload(b)
        assert rc != 0, out
        assert "listeners.ssl.live.certfile: cannot read certificate file " + cert in out, out
        assert "nothing applied" in out, out
        assert peer_serial(tls_port, pki) == 1002
        with connected(PahoClient(b, 5, port=tls_port, tls={"ca_certs": pki.ca[0]})) as (new,):
            assert relayed(new, old, "named/reload", b"after reload") == b"after reload"
