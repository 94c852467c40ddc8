"""MQTT over secure WebSocket (listeners.wss, NanoMQ's `bind = "host:port/path"`): WebSocket
inside TLS, served with the listeners.ssl section's certificate as NanoMQ does. paho-mqtt over
wss talking to TCP clients both ways (3.1.1 and 5.0, QoS 0 and 1, a 1 MB payload), and raw
checks over TLS: a wrong path answered 404, an unmasked frame closed with 1002, a plain
WebSocket upgrade on the wss port closed, the start refused without a certificate. The
certificates are made with the openssl command line (test_tls.py's Pki)."""

import os
import socket
import ssl

import pytest

import mqttraw as m
from helpers import (HOST, PahoClient, both_versions, exchange_both_ways, free_port, is_mosquitto,
                     unique_id, wait_for)
from test_tls import Pki, client_context, live_certificate, peer_serial, reload_to_second_certificate
from test_websocket import BINARY, RawWs, WsMqttClient, frame, upgrade_request

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's listeners.wss")

WSS_PATH = "/mqtt"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def wss_conf(port, cert, key, ssl_enable=False):
    """listeners.wss on `port`; its certificate in listeners.ssl, that listener itself off
    unless `ssl_enable` (the certificate keys are read all the same)."""
    ssl_keys = 'certfile = "%s"\n  keyfile = "%s"\n' % (cert, key)
    if not ssl_enable:
        ssl_keys += "  enable = false\n"
    return ('listeners.ssl {\n  %s}\nlisteners.wss {\n  bind = "%s:%d%s"\n}\n'
            % (ssl_keys, HOST, port, WSS_PATH))


@pytest.fixture
def wss_broker(make_broker, pki):
    """A broker with listeners.wss on a free port (broker.wss_port), packets up to 2 MB."""
    port = free_port()
    b = make_broker(max_packet_size="2MB", extra_conf=wss_conf(port, *pki.server))
    b.wss_port = port
    wait_for(lambda: "wss %s:%d%s" % (HOST, port, WSS_PATH) in b.log_text(), 10,
             what="the ready line naming the wss listener")
    return b


def wss_client(broker, pki, version):
    return PahoClient(broker, version, transport="websockets", port=broker.wss_port,
                      ws_path=WSS_PATH, tls={"ca_certs": pki.ca[0]})


def tls_wrap(raw, pki):
    """A RawWs (or WsMqttClient) socket wrapped in TLS, the handshake done."""
    raw.sock = client_context(pki).wrap_socket(raw.sock, server_hostname="localhost")
    return raw


class WssMqttClient(WsMqttClient):
    """mqttraw over WebSocket frames over TLS."""

    def __init__(self, port, pki, version=4, timeout=5.0):
        self.ws = tls_wrap(RawWs(port, timeout), pki)
        self.ws.upgrade()
        self.host, self.port, self.version = HOST, port, version
        self.sock = self.ws.sock
        self.buf = bytearray()
        self.pending = []
        self.auto_ack = True
        self.closed = False
        self._next_pid = 0
        self.connack = None
        self.frames = []


@both_versions
@pytest.mark.parametrize("qos", [0, 1])
def test_paho_wss_and_tcp_clients_exchange_messages(wss_broker, pki, version, qos):
    wss = wss_client(wss_broker, pki, version)
    tcp = PahoClient(wss_broker, version)
    try:
        topic = unique_id("wss")
        assert wss.subscribe(topic + "/to-wss", qos) == [qos]
        assert tcp.subscribe(topic + "/to-tcp", qos) == [qos]
        tcp.publish(topic + "/to-wss", b"from tcp", qos)
        wss.publish(topic + "/to-tcp", b"from wss", qos)
        assert wss.expect(1)[0].payload == b"from tcp"
        assert tcp.expect(1)[0].payload == b"from wss"
    finally:
        wss.close()
        tcp.close()


@both_versions
def test_one_megabyte_payload_both_ways(wss_broker, pki, version):
    """1 MB in many frames and records, out in 64 KiB frames encrypted record by record."""
    wss = wss_client(wss_broker, pki, version)
    tcp = PahoClient(wss_broker, version)
    try:
        exchange_both_ways(wss, tcp, os.urandom(1024 * 1024))
    finally:
        wss.close()
        tcp.close()


def test_raw_client_over_wss_with_the_ssl_listener_beside_it(make_broker, pki):
    wss_port, ssl_port = free_port(), free_port()
    conf = wss_conf(wss_port, *pki.server, ssl_enable=True).replace(
        "listeners.ssl {\n", 'listeners.ssl {\n  bind = "%s:%d"\n' % (HOST, ssl_port))
    b = make_broker(extra_conf=conf)
    wait_for(lambda: "wss %s:%d" % (HOST, wss_port) in b.log_text(), 10, what="the ready line")
    assert "ssl %s:%d" % (HOST, ssl_port) in b.log_text()
    c = WssMqttClient(wss_port, pki, 5)
    assert c.connect(unique_id()).reason == 0
    assert c.subscribe([("raw/wss", 1)]) == [1]
    c.publish("raw/wss", b"hello", qos=1)
    assert c.publishes(1)[0].payload == b"hello"
    # Not disconnect_and_wait(): a half-close of a Python TLS socket unwraps it.
    c.send(m.disconnect_packet(5, None, None))
    c.ws.expect_close(1000)


def test_wrong_path_is_answered_404_over_tls(wss_broker, pki, open_client):
    bystander = open_client(wss_broker, 4)
    ws = tls_wrap(RawWs(wss_broker.wss_port), pki)
    got, head = ws.http_response(upgrade_request(wss_broker.wss_port, path="/other"))
    assert got == 404, head
    ws.expect_eof()
    wait_for(lambda: "WebSocket upgrade refused with 404" in wss_broker.log_text(),
             what="the refusal in the log")
    assert bystander.is_open()


def test_unmasked_frame_is_closed_with_1002_over_tls(wss_broker, pki, open_client):
    bystander = open_client(wss_broker, 4)
    c = WssMqttClient(wss_broker.wss_port, pki)
    c.ws.send(frame(BINARY, m.connect_packet(unique_id()), mask=False))
    c.ws.expect_close(1002)
    wait_for(lambda: "unmasked client frame" in wss_broker.log_text(), what="the reason logged")
    assert bystander.is_open()


def test_plain_websocket_upgrade_on_the_wss_port_is_closed(wss_broker, open_client):
    bystander = open_client(wss_broker, 4)
    with socket.create_connection((HOST, wss_broker.wss_port), timeout=5) as s:
        s.sendall(upgrade_request(wss_broker.wss_port))
        got = b""
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        except ConnectionResetError:
            pass
    assert b"HTTP/1.1" not in got, got  # at most a TLS alert, never an HTTP answer
    wait_for(lambda: "TLS handshake failed" in wss_broker.log_text(), what="the close logged")
    assert bystander.is_open()


def test_without_the_ssl_certificate_the_start_fails_naming_the_keys(make_broker):
    port = free_port()
    b = make_broker(start=False,
                    extra_conf='listeners.wss {\n  bind = "%s:%d/mqtt"\n}\n' % (HOST, port))
    b.spawn()
    assert b.wait_exit() == 1
    text = b.log_text()
    assert "listeners.wss.bind: needs listeners.ssl.certfile and listeners.ssl.keyfile" in text
    assert b.conf_path + ":" in text, text
    with pytest.raises(OSError):
        socket.create_connection((HOST, port), timeout=1).close()


def test_untrusted_certificate_is_refused_by_the_client(wss_broker, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.other_ca[0])
    with socket.create_connection((HOST, wss_broker.wss_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")


def test_reload_serves_the_new_certificate_on_wss(make_broker, pki, tmp_path):
    cert, key = live_certificate(pki, tmp_path)
    port = free_port()
    b = make_broker(extra_conf=wss_conf(port, cert, key))
    wait_for(lambda: "wss %s:%d" % (HOST, port) in b.log_text(), 10, what="the ready line")
    assert peer_serial(port, pki) == 1001
    old = WssMqttClient(port, pki)
    assert old.connect(unique_id()).reason == 0
    assert old.subscribe([("reload/wss", 1)]) == [1]

    assert "listeners.ssl: certificate, key and CAs read again" in \
        reload_to_second_certificate(b, pki, cert, key)
    assert peer_serial(port, pki) == 1002
    new = WssMqttClient(port, pki, 5)
    assert new.connect(unique_id()).reason == 0
    new.publish("reload/wss", b"after reload", qos=1)
    assert old.publishes(1)[0].payload == b"after reload"
