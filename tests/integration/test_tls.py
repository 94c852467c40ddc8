"""MQTT over TLS (listeners.ssl, NanoMQ's keys): mosquitto_pub/sub and paho over TLS 1.2/1.3,
mutual TLS (verify_peer, fail_if_no_peer_cert), refusals (TLS 1.1, plain MQTT on the TLS
port, certificates the client does not trust), the connect timeout bounding the handshake,
certificate reload, and the TCP and WebSocket listeners beside it. The certificates are made
by each test module with the openssl command line."""

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import mqttraw as m
from broker_harness import HARBORMQ_BIN
from helpers import HOST, PahoClient, free_port, is_mosquitto, unique_id, wait_for

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's listeners.ssl")


# -- certificates

def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)


class Pki:
    """A CA, certificates it signed, and a second CA nobody trusts (files in `dir`)."""

    def __init__(self, d):
        self.dir = str(d)
        self.ca = self.make_ca("ca", "HarborMQ Test CA")
        self.other_ca = self.make_ca("other_ca", "Some Other CA")
        san = "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        self.server = self.issue("server", "harbormq-server-1", 1001, self.ca, san)
        self.server2 = self.issue("server2", "harbormq-server-2", 1002, self.ca, san)
        self.expired = self.issue("expired", "harbormq-expired", 1003, self.ca, san, days=-1)
        self.client = self.issue("client", "client-1", 2001, self.ca,
                                 "extendedKeyUsage=clientAuth\n")
        self.stranger = self.issue("stranger", "client-2", 2002, self.other_ca,
                                   "extendedKeyUsage=clientAuth\n")
        # Self-signed, for 127.0.0.1: valid, but signed by no CA a client trusts.
        key, cert = self.path("selfsigned.key"), self.path("selfsigned.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj",
                "/CN=self-signed", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                cwd=self.dir)
        self.selfsigned = (cert, key)

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, cn):
        key, cert = self.path(name + ".key"), self.path(name + ".pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=" + cn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return (cert, key)

    def issue(self, name, cn, serial, ca, extensions, days=30):
        key, csr, cert = (self.path(name + ".key"), self.path(name + ".csr"),
                          self.path(name + ".pem"))
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write(extensions)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=self.dir)
        openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
                str(serial), "-days", str(days), "-extfile", ext, "-out", cert, cwd=self.dir)
        return (cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def ssl_section(port, cert, key, **keys):
    lines = ['bind = "%s:%d"' % (HOST, port), 'certfile = "%s"' % cert, 'keyfile = "%s"' % key]
    for k, v in keys.items():
        lines.append("%s = %s" % (k, ("true" if v else "false") if isinstance(v, bool)
                                  else '"%s"' % v))
    return "listeners.ssl {\n  %s\n}\n" % "\n  ".join(lines)


@pytest.fixture
def tls_broker(make_broker, pki):
    """Factory: tls_broker(cert=(certfile, keyfile), extra_conf="", **ssl_keys, **mqtt) -> a
    started broker with listeners.ssl on a free port (broker.tls_port), ready."""

    def factory(cert=None, extra_conf="", ssl_keys=None, **settings):
        cert = cert or pki.server
        port = free_port()
        b = make_broker(extra_conf=ssl_section(port, cert[0], cert[1], **(ssl_keys or {})) +
                        extra_conf, **settings)
        b.tls_port = port
        wait_for(lambda: "ssl %s:%d" % (HOST, port) in b.log_text(), 10,
                 what="the ready line naming the ssl listener")
        return b

    return factory


def client_context(pki, cafile=None, cert=None, **versions):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile or pki.ca[0])
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    for k, v in versions.items():
        setattr(ctx, k, v)
    return ctx


def tls_client(port, ctx, version=4, server_hostname="localhost"):
    """An mqttraw.RawClient whose socket is TLS (the handshake done). A TCP close without
    close_notify raises SSLEOFError instead of reading as the end of the stream."""
    c = m.RawClient(HOST, port, version)
    c.sock = ctx.wrap_socket(c.sock, server_hostname=server_hostname,
                             suppress_ragged_eofs=False)
    return c


def peer_serial(port, pki):
    ctx = client_context(pki)
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return int(s.getpeercert()["serialNumber"], 16)


def live_certificate(pki, tmp_path):
    """Copies of pki.server's certificate and key that a test overwrites and reloads."""
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(pki.server[0], cert)
    shutil.copy(pki.server[1], key)
    return cert, key


def reload_to_second_certificate(broker, pki, cert, key):
    """Writes pki.server2 over the live files, runs `harbormq reload`; returns its output."""
    shutil.copy(pki.server2[0], cert)
    shutil.copy(pki.server2[1], key)
    r = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", broker.pid_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def mosquitto(tool, port, pki, *args, cafile=None, cert=None, timeout=15):
    cmd = [tool, "-h", HOST, "-p", str(port), "--cafile", cafile or pki.ca[0]]
    if cert:
        cmd += ["--cert", cert[0], "--key", cert[1]]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


# -- clients over TLS

@pytest.mark.parametrize("protocol", ["mqttv311", "mqttv5"])
def test_mosquitto_clients_publish_and_subscribe_qos0_and_qos1(tls_broker, pki, protocol):
    b = tls_broker()
    topic = unique_id("tls") + "/"
    for qos in (0, 1):
        rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, "-V", protocol, "-q", str(qos),
                            "-r", "-t", topic + str(qos), "-m", "over tls q%d" % qos)
        assert rc == 0, out
    rc, out = mosquitto("mosquitto_sub", b.tls_port, pki, "-V", protocol, "-q", "1", "-v",
                        "-t", topic + "#", "-C", "2", "-W", "10")
    assert rc == 0, out
    assert topic + "0 over tls q0" in out and topic + "1 over tls q1" in out, out


@pytest.mark.parametrize("version", [4, 5])
def test_paho_with_tls_set_talks_to_tcp_and_websocket_clients(tls_broker, pki, open_client,
                                                              version):
    ws_port = free_port()
    b = tls_broker(extra_conf='listeners.ws { bind = "%s:%d/mqtt" }\n' % (HOST, ws_port))
    topic = unique_id("mix")
    tls_sub = PahoClient(b, version, port=b.tls_port, tls={"ca_certs": pki.ca[0]})
    ws_sub = PahoClient(b, version, transport="websockets", port=ws_port)
    try:
        assert tls_sub.subscribe(topic, qos=1) == [1]
        assert ws_sub.subscribe(topic, qos=1) == [1]
        tcp = open_client(b, version)
        assert tcp.subscribe([(topic, 1)]) == [1]
        tcp.publish(topic, b"from tcp", qos=1)
        tls_sub.publish(topic, b"from tls", qos=1)
        for sub in (tls_sub, ws_sub):
            got = sorted(msg.payload for msg in sub.expect(2))
            assert got == [b"from tcp", b"from tls"]
        assert sorted(p.payload for p in tcp.publishes(2)) == [b"from tcp", b"from tls"]
    finally:
        tls_sub.close()
        ws_sub.close()


def test_large_messages_cross_tls_in_many_records(tls_broker, pki):
    b = tls_broker(max_packet_size="2MB")
    ctx = client_context(pki)
    sub = tls_client(b.tls_port, ctx)
    assert sub.connect(unique_id()).reason == 0
    assert sub.subscribe([("big/t", 1)]) == [1]
    pub = tls_client(b.tls_port, ctx, version=5)
    assert pub.connect(unique_id()).reason == 0
    payloads = [os.urandom(300 * 1024 + i) for i in range(4)]
    for p in payloads:
        pub.publish("big/t", p, qos=1)
    got = sub.publishes(4, timeout=15)
    assert [p.payload for p in got] == payloads


def test_the_broker_ends_with_close_notify_and_answers_the_clients(tls_broker, pki):
    b = tls_broker()
    ctx = client_context(pki)
    c = tls_client(b.tls_port, ctx, version=5)
    assert c.connect(unique_id()).reason == 0
    c.send(m.disconnect_packet(5))
    # A clean TLS end reads as b"" (a bare TCP close raises SSLEOFError, see tls_client).
    c.sock.settimeout(5)
    assert c.sock.recv(100) == b""
    # The client's close_notify: answered with ours, then the socket is closed.
    d = tls_client(b.tls_port, ctx)
    assert d.connect("notify-" + unique_id()).reason == 0
    d.sock.settimeout(5)
    d.sock.unwrap()
    wait_for(lambda: "TLS close_notify from the client" in b.log_text(),
             what="the disconnect reason logged")


# -- mutual TLS

def test_mutual_tls_refuses_no_certificate_and_a_stranger_and_admits_the_client(tls_broker, pki):
    b = tls_broker(ssl_keys={"cacertfile": pki.ca[0], "verify_peer": True,
                             "fail_if_no_peer_cert": True})
    args = ("-q", "1", "-t", "mtls/t", "-m", "x")
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, *args)
    assert rc != 0, "no client certificate must be refused: " + out
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, *args, cert=pki.stranger)
    assert rc != 0, "a certificate of another CA must be refused: " + out
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, *args, cert=pki.client)
    assert rc == 0, out
    # Refusals before CONNECT are logged rate-limited: the first one at least.
    wait_for(lambda: "TLS handshake failed: peer did not return a certificate" in b.log_text(),
             what="the refusal logged")
    # The verified client works with python's ssl too, and stays connected.
    c = tls_client(b.tls_port, client_context(pki, cert=pki.client))
    assert c.connect(unique_id()).reason == 0
    assert c.is_open()


def test_verify_peer_without_fail_if_no_peer_cert_admits_a_client_without_one(tls_broker, pki):
    b = tls_broker(ssl_keys={"cacertfile": pki.ca[0], "verify_peer": True})
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, "-q", "1", "-t", "t", "-m", "x")
    assert rc == 0, out
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, "-q", "1", "-t", "t", "-m", "x",
                        cert=pki.stranger)
    assert rc != 0, "a certificate that is sent must verify: " + out


# -- refusals

def test_a_client_offering_only_tls_1_1_is_refused(tls_broker, pki, open_client):
    b = tls_broker()
    bystander = open_client(b, 4)
    ctx = client_context(pki, minimum_version=ssl.TLSVersion.TLSv1_1,
                         maximum_version=ssl.TLSVersion.TLSv1_1)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_client(b.tls_port, ctx)
    wait_for(lambda: "TLS handshake failed: unsupported protocol version" in b.log_text(),
             what="the refusal logged")
    assert bystander.is_open()


def test_plain_mqtt_on_the_tls_port_is_closed_and_logged(tls_broker, pki, open_client):
    b = tls_broker()
    bystander = open_client(b, 4)
    plain = m.RawClient(HOST, b.tls_port, 4)
    plain.send(m.connect_packet(unique_id()))
    assert plain.wait_closed() == []
    wait_for(lambda: "not TLS" in b.log_text(), what="the close logged")
    assert "TLS handshake failed: not TLS" in b.log_text()
    assert bystander.is_open()
    c = tls_client(b.tls_port, client_context(pki))
    assert c.connect(unique_id()).reason == 0


@pytest.mark.parametrize("which", ["selfsigned", "expired"])
def test_a_server_certificate_the_client_does_not_trust_fails_the_client(tls_broker, pki, which):
    b = tls_broker(cert=getattr(pki, which))
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, "-q", "1", "-t", "t", "-m", "x")
    assert rc != 0, out
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        tls_client(b.tls_port, client_context(pki))
    expected = "self-signed" if which == "selfsigned" else "expired"
    assert expected in str(e.value), str(e.value)


def test_mosquitto_with_another_cafile_fails(tls_broker, pki):
    b = tls_broker()
    rc, out = mosquitto("mosquitto_pub", b.tls_port, pki, "-q", "1", "-t", "t", "-m", "x",
                        cafile=pki.other_ca[0])
    assert rc != 0, out


def test_a_handshake_never_finished_is_closed_by_the_connect_timeout(tls_broker, pki,
                                                                      open_client):
    b = tls_broker(connect_timeout="1s")
    bystander = open_client(b, 4)
    s = socket.create_connection((HOST, b.tls_port), timeout=5)
    try:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a handshake record's header, then nothing
        started = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - started < 4
    finally:
        s.close()
    wait_for(lambda: "TLS handshake not complete" in b.log_text(), what="the close logged")
    assert bystander.is_open()


# -- start and reload

def test_an_unreadable_key_file_fails_the_start_naming_the_key(make_broker, pki, tmp_path):
    port = free_port()
    b = make_broker(start=False, extra_conf=ssl_section(port, pki.server[0],
                                                        str(tmp_path / "missing.key")))
    b.spawn()
    assert b.wait_exit() == 1  # "cannot start", as for the store's path errors
    text = b.log_text()
    assert "listeners.ssl.keyfile: cannot read key file %s" % (tmp_path / "missing.key") in text
    assert b.conf_path + ":" in text, text


def test_a_key_of_another_certificate_fails_the_start(make_broker, pki):
    b = make_broker(start=False,
                    extra_conf=ssl_section(free_port(), pki.server[0], pki.server2[1]))
    b.spawn()
    assert b.wait_exit() != 0
    assert "does not match certificate file" in b.log_text(), b.log_text()


def test_reload_serves_the_new_certificate_and_keeps_open_connections(tls_broker, pki, tmp_path):
    cert, key = live_certificate(pki, tmp_path)
    b = tls_broker(cert=(cert, key))
    assert peer_serial(b.tls_port, pki) == 1001
    old = tls_client(b.tls_port, client_context(pki))
    assert old.connect(unique_id()).reason == 0
    assert old.subscribe([("reload/t", 1)]) == [1]

    assert "listeners.ssl" in reload_to_second_certificate(b, pki, cert, key)
    assert peer_serial(b.tls_port, pki) == 1002
    assert old.is_open()
    new = tls_client(b.tls_port, client_context(pki), version=5)
    assert new.connect(unique_id()).reason == 0
    new.publish("reload/t", b"after reload", qos=1)
    assert old.publishes(1)[0].payload == b"after reload"

    # A broken certificate refuses the reload: the running one stays.
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    r = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", b.pid_path], capture_output=True,
                       text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "listeners.ssl.certfile: cannot read certificate file " + cert in out, out
    assert "nothing applied" in out, out
    assert peer_serial(b.tls_port, pki) == 1002
    assert old.is_open()


# -- the certificate's CN as user name (ours: listeners.ssl.use_cn_as_username)

CN_ACL = ('auth {\n  allow_anonymous = true\n  no_match = deny\n  acl = { rules = [\n'
          '    {"permit": "allow", "action": "pubsub", "topics": ["users/%u/#"]}\n'
          '    {"permit": "deny"}\n  ] }\n}\n')


def test_the_verified_certificates_cn_is_the_user_name(tls_broker, pki):
    b = tls_broker(extra_conf=CN_ACL, ssl_keys={"cacertfile": pki.ca[0], "verify_peer": True,
                                                "use_cn_as_username": True})
    c = tls_client(b.tls_port, client_context(pki, cert=pki.client), version=5)
    # The CONNECT claims another user: the certificate's CN (client-1) is the one that counts.
    assert c.connect(unique_id(), username="mallory", password=b"x").reason == 0
    assert c.subscribe([("users/client-1/#", 1)]) == [1]
    assert c.subscribe([("users/mallory/#", 1)]) == [0x87]
    assert c.publish("users/client-1/t", b"mine", qos=1).reason == 0
    assert c.publishes(1)[0].payload == b"mine"
    assert c.publish("users/mallory/t", b"no", qos=1).reason == 0x87
    # Without a certificate there is no user name at all, whatever the CONNECT says.
    anon = tls_client(b.tls_port, client_context(pki), version=5)
    assert anon.connect(unique_id(), username="client-1", password=b"x").reason == 0
    assert anon.subscribe([("users/client-1/#", 1)]) == [0x87]


def test_cn_as_username_without_verify_peer_fails_the_start(make_broker, pki):
    b = make_broker(start=False, extra_conf=ssl_section(free_port(), *pki.server,
                                                        use_cn_as_username=True))
    b.spawn()
    assert b.wait_exit() == 1
    assert "listeners.ssl.use_cn_as_username: needs listeners.ssl.verify_peer" in b.log_text()
