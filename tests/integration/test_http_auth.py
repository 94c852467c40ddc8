"""auth.http_auth (NanoMQ's auth_req / super_req / acl_req): a real HTTP server in the test
process decides who connects, publishes and subscribes; a slow or dead one refuses with
"server unavailable" and stalls nobody else; packets pipelined behind a question wait for the
answer, in order, and are not lost."""

import json
import os
import signal
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import mqttraw
from helpers import free_port, unique_id, wait_for
from helpers import HOST, PahoClient
from test_tls import Pki, ssl_section

pytestmark = pytest.mark.harbormq_only

UNAVAILABLE = {4: 0x03, 5: 0x88}
BAD_USER_PASSWORD = {4: 0x04, 5: 0x86}


class AuthServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>. /auth: user "good" with password "pw"
    gets 200, "slow" 200 after `slow_s`, "err" 500, anyone else 403. /super: "admin" 200.
    /acl, by the topic's first level: "ok" and "#" 200, "slow" 200 after `slow_s`, "err"
    500, anything else 403. Every request is recorded as dict(path, query, headers, body)."""

    def __init__(self, slow_s=3.0, tls=None):
        self.requests = []
        self.slow_s = slow_s
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                url = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                ctype = self.headers.get("content-type", "")
                if "json" in ctype:
                    params = json.loads(body) if body else {}
                else:
                    params = dict(urllib.parse.parse_qsl(body or url.query,
                                                         keep_blank_values=True))
                with outer.lock:
                    outer.requests.append(dict(path=url.path, query=url.query, body=body,
                                               headers=dict(self.headers), params=params,
                                               method=self.command))
                user = params.get("username", "")
                status = 403
                if url.path == "/auth":
                    if user == "good" and params.get("password") == "pw":
                        status = 200
                    elif user == "admin" and params.get("password") == "root":
                        status = 200
                    elif user == "slow":
                        time.sleep(outer.slow_s)
                        status = 200
                    elif user == "err":
                        status = 500
                elif url.path == "/open":
                    status = 200
                elif url.path == "/super":
                    status = 200 if user == "admin" else 403
                elif url.path == "/acl":
                    first = params.get("topic", "").split("/")[0]
                    if first == "slow":
                        time.sleep(outer.slow_s)
                    status = {"ok": 200, "slow": 200, "err": 500, "#": 200}.get(first, 403)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = _handle
            do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # an ssl.SSLContext: HTTPS
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path, host="127.0.0.1"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def of(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    s = AuthServer()
    yield s
    s.close()


PARAMS = ('params = {clientid = "%c", username = "%u", password = "%P", ip = "%a", '
          'proto = "%r"}')


def http_broker(make_broker, url, extra_req="", extra_auth="", extra_http="", extra_conf="",
                **settings):
    conf = ("auth {\n  allow_anonymous = true\n%s\n  http_auth {\n"
            "    auth_req { url = \"%s\"\n %s\n %s }\n    timeout = 1s\n%s\n  }\n}\n" % (
                extra_auth, url, PARAMS if "params" not in extra_req else "", extra_req,
                extra_http))
    return make_broker(extra_conf=conf + extra_conf, **settings)


def connack(b, version, **kw):
    c = mqttraw.RawClient(b.host, b.port, version)
    try:
        return c.connect(unique_id("h"), timeout=10, **kw).reason
    finally:
        c.close()


@pytest.mark.parametrize("version", [4, 5])
def test_auth_req_decides_and_gets_nanomq_params(make_broker, http_server, version):
    b = http_broker(make_broker, http_server.url("/auth"), "method = post")
    c = mqttraw.RawClient(b.host, b.port, version)
    assert c.connect("dev-42", username="good", password="pw").reason == 0
    assert c.ping()
    c.close()
    req = http_server.of("/auth")[-1]
    assert req["method"] == "POST"
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert req["params"] == {"clientid": "dev-42", "username": "good", "password": "pw",
                             "ip": "127.0.0.1", "proto": str(version)}
    assert connack(b, version, username="good", password="nope") == BAD_USER_PASSWORD[version]
    assert connack(b, version, username="err", password="x") == UNAVAILABLE[version]
    # Anonymous clients are asked about too (%u empty).
    assert connack(b, version) == BAD_USER_PASSWORD[version]
    assert http_server.of("/auth")[-1]["params"]["username"] == ""
    assert "nope" not in b.log_text() and "pw\"" not in b.log_text()


def test_get_with_query_and_json_post(make_broker, http_server):
    b = http_broker(make_broker, http_server.url("/auth?site=7"),
                    'method = get\nparams = {u = "%u", p = "%P", username = "%u", '
                    'password = "%P"}')
    assert connack(b, 4, username="good", password="pw") == 0
    req = http_server.of("/auth")[-1]
    assert req["method"] == "GET"
    assert urllib.parse.parse_qs(req["query"]) == {
        "site": ["7"], "u": ["good"], "p": ["pw"], "username": ["good"], "password": ["pw"]}
    b.stop()

    j = http_broker(make_broker, http_server.url("/auth"),
                    'method = post\nheaders { content-type = "application/json", '
                    'x-site = "edge \\"7\\"" }\nparams = {username = "%u", password = "%P"}')
    assert connack(j, 5, username="good", password="pw") == 0
    req = http_server.of("/auth")[-1]
    assert req["headers"]["content-type"] == "application/json"
    assert req["headers"]["x-site"] == 'edge "7"'
    assert json.loads(req["body"]) == {"username": "good", "password": "pw"}


def test_server_down_or_slow_refuses_and_stalls_nobody(make_broker, http_server):
    # Nothing listens on this port.
    dead = http_broker(make_broker, "http://127.0.0.1:%d/auth" % free_port())
    t0 = time.monotonic()
    assert connack(dead, 5, username="good", password="pw") == UNAVAILABLE[5]
    assert time.monotonic() - t0 < 3
    # The close reason is logged as the connection closes, after the CONNACK went out.
    wait_for(lambda: "HTTP auth server gave no answer" in dead.log_text(), 5,
             what="the refusal's reason in the log")
    dead.stop()

    b = http_broker(make_broker, http_server.url("/auth"),
                    extra_auth='password { "local": "secret" }')
    slow = mqttraw.RawClient(b.host, b.port, 5)
    slow.send(mqttraw.connect_packet(unique_id("slow"), 5, username="slow", password="x"))
    # While that request hangs (3 s against a 1 s timeout), others connect and talk at once;
    # a user the password file accepts needs no HTTP request at all.
    t0 = time.monotonic()
    sub = mqttraw.RawClient(b.host, b.port, 5)
    assert sub.connect(unique_id("l"), username="local", password="secret").reason == 0
    assert sub.subscribe([("t/#", 1)]) == [1]
    pub = mqttraw.RawClient(b.host, b.port, 5)
    assert pub.connect(unique_id("g"), username="good", password="pw").reason == 0
    pub.publish("t/x", b"fast", qos=1)
    assert sub.publishes(1)[0].payload == b"fast"
    assert time.monotonic() - t0 < 0.9, "the slow HTTP request held other clients up"
    assert not [r for r in http_server.of("/auth") if r["params"]["username"] == "local"]
    ack = slow.wait_for(mqttraw.CONNACK, timeout=5)
    assert ack.reason == UNAVAILABLE[5], ack
    for c in (slow, sub, pub):
        c.close()


def test_packets_pipelined_behind_the_connect_wait_for_the_answer(make_broker):
    server = AuthServer(slow_s=0.7)
    try:
        b = http_broker(make_broker, server.url("/auth"), extra_http="timeout = 5s")
        c = mqttraw.RawClient(b.host, b.port, 5)
        c.send(mqttraw.connect_packet(unique_id("p"), 5, username="slow", password="x") +
               mqttraw.subscribe_packet(1, [("pipe/#", 1)], 5) +
               mqttraw.publish_packet("pipe/a", b"one", qos=1, pid=2, version=5) +
               mqttraw.pingreq_packet())
        assert c.wait_for(mqttraw.CONNACK, timeout=5).reason == 0
        assert c.wait_for(mqttraw.SUBACK, pid=1).reasons == [1]
        assert c.wait_for(mqttraw.PUBACK, pid=2).reason == 0
        assert c.publishes(1)[0].payload == b"one"
        assert c.wait_for(mqttraw.PINGRESP)
        c.close()
    finally:
        server.close()


def test_super_req_bypasses_the_acl(make_broker, http_server):
    b = http_broker(make_broker, http_server.url("/auth"),
                    extra_auth='acl { rules = [ {"permit": "deny"} ] }',
                    extra_http='super_req { url = "%s"\n params = {username = "%%u"} }' %
                    http_server.url("/super"))
    admin = mqttraw.RawClient(b.host, b.port, 5)
    assert admin.connect(unique_id("a"), username="admin", password="root").reason == 0
    assert admin.subscribe([("any/#", 1)]) == [1]
    user = mqttraw.RawClient(b.host, b.port, 5)
    assert user.connect(unique_id("u"), username="good", password="pw").reason == 0
    assert user.subscribe([("any/#", 1)]) == [0x87]
    assert user.publish("any/x", b"no", qos=1).reason == 0x87
    assert admin.publish("any/y", b"yes", qos=1).reason == 0
    assert admin.publishes(1)[0].payload == b"yes"
    assert [r["params"]["username"] for r in http_server.of("/super")] == ["admin", "good"]
    admin.close()
    user.close()


def test_cache_ttl_remembers_answers(make_broker, http_server):
    b = http_broker(make_broker, http_server.url("/auth"), extra_http="cache_ttl = 30s")
    for _ in range(3):
        assert connack(b, 4, username="good", password="pw") == 0
    assert connack(b, 4, username="good", password="bad") == BAD_USER_PASSWORD[4]
    assert connack(b, 4, username="good", password="bad") == BAD_USER_PASSWORD[4]
    # One request per distinct CONNECT (the client id is a param: keep it fixed).
    c = mqttraw.RawClient(b.host, b.port, 4)
    assert c.connect("same-id", username="good", password="pw").reason == 0
    c.close()
    c = mqttraw.RawClient(b.host, b.port, 4)
    assert c.connect("same-id", username="good", password="pw").reason == 0
    c.close()
    same = [r for r in http_server.of("/auth") if r["params"]["clientid"] == "same-id"]
    assert len(same) == 1, same
    # A reload empties the cache.
    os.kill(b.pid, signal.SIGHUP)
    wait_for(lambda: "] reload: " in b.log_text(), 5, what="the reload applied")
    c = mqttraw.RawClient(b.host, b.port, 4)
    assert c.connect("same-id", username="good", password="pw").reason == 0
    c.close()
    same = [r for r in http_server.of("/auth") if r["params"]["clientid"] == "same-id"]
    assert len(same) == 2, same


ACL_PARAMS = ('params = {clientid = "%c", username = "%u", access = "%A", ipaddr = "%a", '
              'topic = "%t", mountpoint = "%m"}')


def acl_broker(make_broker, server, extra_auth="", **settings):
    """NanoMQ's acl_req, with the params of its nanomq_example.conf."""
    return http_broker(make_broker, server.url("/auth"), extra_auth=extra_auth,
                       extra_http='acl_req { url = "%s"\n %s }' % (server.url("/acl"), ACL_PARAMS),
                       **settings)


def acl_asked(server):
    return [(r["params"]["access"], r["params"]["topic"]) for r in server.of("/acl")]


@pytest.mark.parametrize("version", [4, 5])
def test_acl_req_decides_each_publish_and_subscribe(make_broker, http_server, version):
    b = acl_broker(make_broker, http_server)
    sub = mqttraw.RawClient(b.host, b.port, version)
    assert sub.connect(unique_id("s"), username="good", password="pw").reason == 0
    assert sub.subscribe([("ok/#", 1)]) == [1]
    assert sub.subscribe([("deny/#", 1)]) == [0x87 if version == 5 else 0x80]
    pub = mqttraw.RawClient(b.host, b.port, version)
    assert pub.connect("acl-pub", username="good", password="pw").reason == 0
    assert pub.publish("ok/a", b"yes", qos=1).reason in (0, None)
    denied = pub.publish("deny/a", b"no", qos=1)
    if version == 5:
        assert denied.reason == 0x87
    got = sub.publishes(1)
    assert [(p.topic, p.payload) for p in got] == [("ok/a", b"yes")]
    sub.no_publish(0.5)  # deny/a was not routed (3.1.1 acknowledges it and drops it)
    # NanoMQ's params: access 1 = subscribe, 2 = publish; %m (mount point) is empty.
    assert ("1", "ok/#") in acl_asked(http_server) and ("1", "deny/#") in acl_asked(http_server)
    r = [r["params"] for r in http_server.of("/acl") if r["params"]["topic"] == "ok/a"][0]
    assert r == {"clientid": "acl-pub", "username": "good", "access": "2",
                 "ipaddr": "127.0.0.1", "topic": "ok/a", "mountpoint": ""}, r
    sub.close()
    pub.close()


def test_acl_req_one_question_per_filter_and_answers_kept_per_connection(make_broker,
                                                                          http_server):
    b = acl_broker(make_broker, http_server)
    c = mqttraw.RawClient(b.host, b.port, 5)
    assert c.connect(unique_id("m"), username="good", password="pw").reason == 0
    assert c.subscribe([("ok/1", 1), ("deny/2", 1), ("ok/3", 0)]) == [1, 0x87, 0]
    for i in range(5):
        assert c.publish("ok/1", b"%d" % i, qos=1).reason == 0
    assert [p.payload for p in c.publishes(5)] == [b"%d" % i for i in range(5)]
    # The same topic again is answered from the connection's cache (auth.cache.ttl).
    assert acl_asked(http_server) == [("1", "ok/1"), ("1", "deny/2"), ("1", "ok/3"),
                                      ("2", "ok/1")]
    c.close()
    # Another connection asks again: answers belong to a connection.
    d = mqttraw.RawClient(b.host, b.port, 5)
    assert d.connect(unique_id("m"), username="good", password="pw").reason == 0
    assert d.publish("ok/1", b"x", qos=1).reason == 0x10  # allowed; no subscriber now
    assert acl_asked(http_server)[-1] == ("2", "ok/1") and len(acl_asked(http_server)) == 5
    d.close()


def test_acl_req_slow_answer_keeps_order_and_stalls_nobody_else(make_broker):
    server = AuthServer(slow_s=1.5)
    try:
        b = acl_broker(make_broker, server)
        sub = mqttraw.RawClient(b.host, b.port, 4)
        assert sub.connect(unique_id("s"), username="good", password="pw").reason == 0
        assert sub.subscribe([("#", 1)]) == [1]
        pub = mqttraw.RawClient(b.host, b.port, 4)
        assert pub.connect(unique_id("p"), username="good", password="pw").reason == 0
        # Pipelined: the first waits 1.5 s for its answer, the rest must come after it.
        data = b"".join(mqttraw.publish_packet(t, t.encode(), 1, pid=i + 1)
                        for i, t in enumerate(["slow/1", "ok/2", "ok/3"]))
        t0 = time.monotonic()
        pub.send(data)
        # Meanwhile another client of the same shard or not is served at once.
        other = mqttraw.RawClient(b.host, b.port, 4)
        assert other.connect(unique_id("o"), username="good", password="pw").reason == 0
        assert other.publish("ok/other", b"fast", qos=1) is not None
        assert time.monotonic() - t0 < 1.0
        got = [p.topic for p in sub.publishes(4, timeout=10)]
        assert got == ["ok/other", "slow/1", "ok/2", "ok/3"], got
        for pid in (1, 2, 3):
            pub.wait_for(mqttraw.PUBACK, 5, pid)
        for c in (sub, pub, other):
            c.close()
    finally:
        server.close()


def test_acl_req_no_answer_falls_back_to_no_match(make_broker, http_server):
    b = acl_broker(make_broker, http_server, extra_auth="  no_match = deny")
    c = mqttraw.RawClient(b.host, b.port, 5)
    assert c.connect(unique_id("e"), username="good", password="pw").reason == 0
    assert c.publish("err/x", b"x", qos=1).reason == 0x87  # HTTP 500: no_match = deny
    assert c.publish("ok/x", b"x", qos=1).reason == 0x10  # allowed; nobody subscribed
    c.close()
    wait_for(lambda: "acl_req: no answer from the HTTP server (HTTP 500)" in b.log_text(), 5,
             what="the unavailable answer logged")


def test_acl_req_super_user_is_not_asked(make_broker, http_server):
    b = http_broker(make_broker, http_server.url("/auth"),
                    extra_http='super_req { url = "%s"\n params = {username = "%%u"} }\n'
                    'acl_req { url = "%s"\n %s }' % (http_server.url("/super"),
                                                     http_server.url("/acl"), ACL_PARAMS))
    admin = mqttraw.RawClient(b.host, b.port, 5)
    assert admin.connect(unique_id("a"), username="admin", password="root").reason == 0
    assert admin.subscribe([("deny/#", 1)]) == [1]
    assert admin.publish("deny/x", b"x", qos=1).reason == 0
    assert admin.publishes(1)[0].topic == "deny/x"
    assert http_server.of("/acl") == []
    admin.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def https_server(pki, require_client_cert=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki.server)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca[0])
    return AuthServer(tls=ctx)


def https_broker(make_broker, server, tls_keys, host="127.0.0.1"):
    tls = "tls { %s }" % ", ".join('%s = "%s"' % kv for kv in tls_keys.items()) if tls_keys else ""
    return http_broker(make_broker, server.url("/auth", host), extra_req=PARAMS + "\n" + tls)


def test_https_auth_req_verified_against_cacertfile(make_broker, pki):
    server = https_server(pki)
    try:
        b = https_broker(make_broker, server, {"cacertfile": pki.ca[0]})
        assert connack(b, 5, username="good", password="pw") == 0
        assert connack(b, 5, username="good", password="bad") == BAD_USER_PASSWORD[5]
        assert [r["params"]["username"] for r in server.of("/auth")] == ["good", "good"]
        # The host name is checked too: the certificate names 127.0.0.1 and localhost.
        b2 = https_broker(make_broker, server, {"cacertfile": pki.ca[0]}, host="localhost")
        assert connack(b2, 4, username="good", password="pw") == 0
    finally:
        server.close()


def test_https_untrusted_certificate_is_server_unavailable(make_broker, pki):
    server = https_server(pki)
    try:
        # No cacertfile: the system's CAs, which do not know the test CA.
        b = https_broker(make_broker, server, {})
        assert connack(b, 5, username="good", password="pw") == UNAVAILABLE[5]
        assert server.of("/auth") == []
        wait_for(lambda: "certificate" in b.log_text() and "HTTP auth server gave no answer"
                 in b.log_text(), 5, what="the TLS failure named in the log")
    finally:
        server.close()


def test_https_client_certificate(make_broker, pki):
    server = https_server(pki, require_client_cert=True)
    try:
        without = https_broker(make_broker, server, {"cacertfile": pki.ca[0]})
        assert connack(without, 4, username="good", password="pw") == UNAVAILABLE[4]
        cert, key = pki.client
        b = https_broker(make_broker, server,
                         {"cacertfile": pki.ca[0], "certfile": cert, "keyfile": key})
        assert connack(b, 4, username="good", password="pw") == 0
    finally:
        server.close()


def test_https_tls_files_must_be_readable_at_start(make_broker, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    b = http_broker(make_broker, "https://127.0.0.1:1/auth",
                    extra_req='tls { cacertfile = "%s" }' % missing, start=False)
    proc = b.spawn()
    assert proc.wait(15) == 2
    b.proc = None
    log = b.log_text()
    assert "auth.http_auth.auth_req.tls.cacertfile" in log and "cannot read" in log, log


def test_listener_port_and_client_certificate_placeholders(make_broker, http_server, pki):
    """%p is the port the client came in on; %C and %d a TLS client's verified certificate's
    CN and subject (empty over plain TCP)."""
    tls_port = free_port()
    b = http_broker(make_broker, http_server.url("/open"),
                    extra_req='params = {clientid = "%c", port = "%p", cn = "%C", dn = "%d"}',
                    extra_conf=ssl_section(tls_port, *pki.server, cacertfile=pki.ca[0],
                                           verify_peer=True))
    wait_for(lambda: "ssl %s:%d" % (HOST, tls_port) in b.log_text(), 10, what="the ssl listener")
    cert, key = pki.client
    c = PahoClient(b, 4, client_id="with-cert", port=tls_port,
                   tls={"ca_certs": pki.ca[0], "certfile": cert, "keyfile": key})
    c.close()
    assert connack(b, 4) == 0
    by_id = {r["params"]["clientid"]: r["params"] for r in http_server.of("/open")}
    assert by_id["with-cert"]["port"] == str(tls_port)
    assert by_id["with-cert"]["cn"] == "client-1"
    assert "CN=client-1" in by_id["with-cert"]["dn"], by_id["with-cert"]
    plain = [p for cid, p in by_id.items() if cid != "with-cert"][0]
    assert plain == {"clientid": plain["clientid"], "port": str(b.port), "cn": "", "dn": ""}

