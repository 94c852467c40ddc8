"""auth {}: password files (NanoMQ's, Mosquitto's, `harbormq passwd`'s), allow_anonymous,
ACL rules in NanoMQ's format, deny_action, and reload, with real clients: raw sockets for
the exact reason codes, paho-mqtt, mosquitto_pub/mosquitto_sub, mosquitto_passwd and a real
Mosquitto reading a file `harbormq passwd` wrote."""

import base64
import hashlib
import hmac
import os
import signal
import subprocess
import threading

import paho.mqtt.client as paho
import pytest

import mqttraw
from broker_harness import HARBORMQ_BIN
from helpers import HOST, unique_id, wait_for
from remote_mosquitto import RemoteMosquitto

pytestmark = pytest.mark.harbormq_only

BAD_USER_PASSWORD = {4: 0x04, 5: 0x86}
NOT_AUTHORIZED = {4: 0x05, 5: 0x87}
SUBACK_REFUSED = {4: 0x80, 5: 0x87}
# A PUBACK that takes the message (5.0: 0x10 when nobody subscribed).
ACCEPTED = (None, 0, 0x10)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def connack(broker, version, **kw):
    """CONNECT with kw (username=, password=, will=) and return the CONNACK reason."""
    c = mqttraw.RawClient(broker.host, broker.port, version)
    try:
        return c.connect(unique_id("a"), **kw).reason
    finally:
        c.close()


def auth_broker(make_broker, tmp_path, auth_body, **settings):
    return make_broker(extra_conf="auth {\n%s\n}\n" % auth_body, **settings)


def passwd(*args, stdin=None):
    return subprocess.run([HARBORMQ_BIN, "passwd", *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


# -- passwords

@pytest.mark.parametrize("version", [4, 5])
def test_nanomq_password_file_included(make_broker, tmp_path, version):
    write(tmp_path / "nanomq_pwd.conf", '# users\n"admin": "public"\n"client": "s3cr3t-Pw"\n')
    b = auth_broker(make_broker, tmp_path,
                    'allow_anonymous = false\npassword = {include "%s"}' % (
                        tmp_path / "nanomq_pwd.conf"))
    assert connack(b, version, username="client", password="s3cr3t-Pw") == 0
    assert connack(b, version, username="admin", password="public") == 0
    assert connack(b, version, username="client", password="s3cr3t-pw") == \
        BAD_USER_PASSWORD[version]
    assert connack(b, version, username="client", password="") == BAD_USER_PASSWORD[version]
    assert connack(b, version, username="client") == BAD_USER_PASSWORD[version]
    assert connack(b, version, username="nobody", password="public") == \
        BAD_USER_PASSWORD[version]
    assert connack(b, version) == NOT_AUTHORIZED[version]
    # Nothing a client sent as a password is ever written to the log.
    log = b.log_text()
    for secret in ("s3cr3t-Pw", "s3cr3t-pw", "public"):
        assert secret not in log, "a password in the log: %r" % secret


def test_password_inline_and_anonymous_allowed(make_broker, tmp_path):
    b = auth_broker(make_broker, tmp_path,
                    'allow_anonymous = true\npassword { "dev1": "k1" }')
    assert connack(b, 4) == 0, "anonymous is allowed"
    assert connack(b, 4, username="dev1", password="k1") == 0
    # A user name that is not in the file is refused even though anonymous clients may
    # connect: a client that claims an identity has to prove it.
    assert connack(b, 4, username="dev2", password="k1") == BAD_USER_PASSWORD[4]


def test_mosquitto_passwd_file_with_mosquitto_clients(make_broker, tmp_path):
    pwfile = str(tmp_path / "mosq.passwd")
    subprocess.run(["mosquitto_passwd", "-c", "-b", pwfile, "sensor", "hunter2"], check=True,
                   capture_output=True, timeout=30)
    subprocess.run(["mosquitto_passwd", "-b", pwfile, "other", "x"], check=True,
                   capture_output=True, timeout=30)
    b = auth_broker(make_broker, tmp_path,
                    'allow_anonymous = false\npassword_file = "%s"' % pwfile)
    # A retained message, so the subscriber started afterwards gets it with no race.
    ok = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(b.port), "-u", "other",
                         "-P", "x", "-t", "m/1", "-m", "hello", "-q", "1", "-r"],
                        capture_output=True, text=True, timeout=15)
    assert ok.returncode == 0, ok.stderr
    sub = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", str(b.port), "-u", "sensor",
                          "-P", "hunter2", "-t", "m/#", "-C", "1", "-W", "10", "-q", "1"],
                         capture_output=True, text=True, timeout=15)
    assert sub.returncode == 0, sub.stderr
    assert sub.stdout.strip() == "hello"
    bad = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(b.port), "-u", "sensor",
                          "-P", "hunter3", "-t", "m/1", "-m", "x", "-V", "mqttv5"],
                         capture_output=True, text=True, timeout=15)
    assert bad.returncode != 0
    assert "bad user name or password" in bad.stderr.lower(), bad.stderr


def test_harbormq_passwd_file_read_by_mosquitto_and_harbormq(make_broker, tmp_path):
    pwfile = str(tmp_path / "harbor.passwd")
    r = passwd("-c", "-b", "pa55 word", pwfile, "edge")
    assert r.returncode == 0, r.stderr
    r = passwd("-b", "second", pwfile, "edge2")
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(pwfile).st_mode & 0o777) == "0o600"
    text = open(pwfile).read()
    assert "pa55 word" not in text and "second" not in text
    assert text.startswith("edge:$7$")
    # mosquitto_passwd appends to the file as it is.
    subprocess.run(["mosquitto_passwd", "-b", pwfile, "mosq", "m0sq"], check=True,
                   capture_output=True, timeout=30)

    with RemoteMosquitto(tmp_path / "mosquitto",
                         extra_lines=["password_file %s" % pwfile]) as remote:
        def mosq_connack(user, pw):
            c = mqttraw.RawClient(HOST, remote.port, 4)
            try:
                return c.connect(unique_id("m"), username=user, password=pw).reason
            finally:
                c.close()
        assert mosq_connack("edge", "pa55 word") == 0
        assert mosq_connack("edge2", "second") == 0
        assert mosq_connack("edge", "pa55 wort") == 0x05  # Mosquitto answers 5 here

    b = auth_broker(make_broker, tmp_path,
                    'allow_anonymous = false\npassword_file = "%s"' % pwfile)
    assert connack(b, 5, username="edge", password="pa55 word") == 0
    assert connack(b, 5, username="edge2", password="second") == 0
    assert connack(b, 5, username="mosq", password="m0sq") == 0
    assert connack(b, 5, username="edge", password="pa55 wort") == BAD_USER_PASSWORD[5]

    # -D removes a user; the broker sees it after a reload.
    r = passwd("-D", pwfile, "edge2")
    assert r.returncode == 0, r.stderr
    assert "edge2:" not in open(pwfile).read()
    os.kill(b.pid, signal.SIGHUP)
    wait_for(lambda: connack(b, 5, username="edge2", password="second") ==
             BAD_USER_PASSWORD[5], 10, what="the removed user refused after reload")
    assert connack(b, 5, username="edge", password="pa55 word") == 0


def test_paho_with_user_name_and_password(make_broker, tmp_path):
    b = auth_broker(make_broker, tmp_path,
                    'allow_anonymous = false\npassword { "paho": "pw-1" }')
    results = {}
    for label, pw in (("good", "pw-1"), ("bad", "pw-2")):
        got = threading.Event()
        c = paho.Client(unique_id("paho"), protocol=paho.MQTTv311)
        c.username_pw_set("paho", pw)

        def on_connect(client, userdata, flags, rc, label=label, got=got):
            results[label] = rc
            got.set()
        c.on_connect = on_connect
        c.connect(b.host, b.port, 30)
        c.loop_start()
        try:
            assert got.wait(10), "no CONNACK for %s" % label
        finally:
            c.disconnect()
            c.loop_stop()
    assert results == {"good": 0, "bad": 4}


# -- ACL

ACL_RULES = """rules = [
  # each user owns users/<name>/#
  {"permit": "allow", "username": "#", "action": "pubsub", "topics": ["users/%u/#"]}
  {"permit": "deny", "username": "#", "action": "subscribe", "topics": ["secret/#"]}
  {"permit": "allow", "clientid": "monitor", "action": "subscribe", "topics": ["users/#"]}
  {"permit": "deny", "action": "publish", "topics": ["ro/#"]}
  {"permit": "allow", "action": "pubsub", "topics": ["public/#", "ro/#"]}
  {"permit": "deny"}
]
"""


def acl_broker(make_broker, tmp_path, extra="", rules=ACL_RULES, no_match="allow"):
    acl = write(tmp_path / "nanomq_acl.conf", rules)
    return auth_broker(make_broker, tmp_path, 'password { "alice": "a", "bob": "b" }\n'
                       'acl = {include "%s"}\nno_match = %s\n%s' % (acl, no_match, extra))


def client(open_client, b, version, user=None, client_id=None):
    kw = {} if user is None else dict(username=user, password=user[0])
    return open_client(b, version, client_id=client_id or unique_id(user or "anon"), **kw)


@pytest.mark.parametrize("version", [4, 5])
def test_acl_publish_and_subscribe(make_broker, open_client, tmp_path, version):
    b = acl_broker(make_broker, tmp_path)
    monitor = client(open_client, b, version, "bob", client_id="monitor")
    assert monitor.subscribe([("users/#", 1), ("public/#", 1), ("ro/#", 1)]) == [1, 1, 1]
    alice = client(open_client, b, version, "alice")

    # Allowed: her own tree (%u) and public/.
    assert alice.publish("users/alice/t", b"mine", qos=1).reason in ACCEPTED
    assert alice.publish("public/x", b"pub", qos=1).reason in ACCEPTED
    got = monitor.publishes(2)
    assert [(p.topic, p.payload) for p in got] == [("users/alice/t", b"mine"),
                                                  ("public/x", b"pub")]

    # Denied: bob's tree, a read-only topic, anything no allow rule names.
    for topic in ("users/bob/t", "ro/status", "other/t"):
        ack = alice.publish(topic, b"no", qos=1)
        if version == 5:
            assert ack.reason == 0x87, (topic, ack.reason)
        else:
            assert ack.type == mqttraw.PUBACK and ack.reason in (None, 0), \
                "3.1.1 can only acknowledge and drop"
    rec = alice.publish("users/bob/q2", b"no", qos=2)
    if version == 5:
        assert rec.type == mqttraw.PUBREC and rec.reason == 0x87
    alice.publish("users/bob/q0", b"no", qos=0)
    monitor.no_publish(0.7)
    assert alice.is_open(), "ignore: the connection stays"

    # Subscriptions: covered by an allow rule, overlapping a deny rule, or neither.
    reasons = alice.subscribe([("users/alice/+", 1), ("public/#", 0), ("secret/x", 1),
                               ("#", 0), ("users/bob/#", 1), ("$share/g/public/a", 1)])
    r = SUBACK_REFUSED[version]
    assert reasons == [1, 0, r, r, r, 1], reasons
    # The refused "#" receives nothing of what she may not read.
    bob = client(open_client, b, version, "bob")
    bob.publish("users/bob/x", b"bob's", qos=1)
    monitor.publishes(1)
    alice.no_publish(0.5)
    # ...and what she may read arrives.
    bob.publish("public/news", b"n", qos=1)
    assert [p.payload for p in alice.publishes(1)] == [b"n"]


@pytest.mark.parametrize("version", [4, 5])
def test_deny_action_disconnect(make_broker, open_client, tmp_path, version):
    b = acl_broker(make_broker, tmp_path, extra="deny_action = disconnect")
    alice = client(open_client, b, version, "alice")
    assert alice.publish("users/alice/ok", b"x", qos=1).reason in ACCEPTED
    alice.send(mqttraw.publish_packet("ro/x", b"x", qos=1, pid=7, version=version))
    got = alice.wait_closed(5)
    types = [p.type for p in got]
    assert mqttraw.PUBACK not in types, got
    if version == 5:
        assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].reason == 0x87, got
    # A denied subscription closes too.
    bob = client(open_client, b, version, "bob")
    bob.send(mqttraw.subscribe_packet(3, [("secret/#", 0)], version))
    got = bob.wait_closed(5)
    assert mqttraw.SUBACK not in [p.type for p in got], got


@pytest.mark.parametrize("version", [4, 5])
def test_will_topic_checked_at_connect(make_broker, tmp_path, version):
    b = acl_broker(make_broker, tmp_path)
    assert connack(b, version, username="alice", password="a",
                   will=dict(topic="users/bob/lwt", payload=b"gone")) == NOT_AUTHORIZED[version]
    assert connack(b, version, username="alice", password="a",
                   will=dict(topic="users/alice/lwt", payload=b"gone")) == 0


def test_ipaddr_and_clientid_rules(make_broker, open_client, tmp_path):
    rules = """rules = [
      {"permit": "deny", "ipaddr": "10.0.0.0/8", "action": "publish"}
      {"permit": "deny", "ipaddr": "127.0.0.1", "action": "publish", "topics": ["blocked/#"]}
      {"permit": "allow", "action": "publish", "topics": ["blocked/#"]}
      {"permit": "allow", "ipaddr": "127.0.0.0/8", "action": "publish", "topics": ["lo/#"]}
      {"permit": "allow", "and": [{"clientid": "cam-1"}, {"ipaddr": "::1"}]}
      {"permit": "allow", "or": [{"clientid": "cam-2"}, {"ipaddr": "192.0.2.1"}],
       "topics": ["cam/%c/#"]}
      {"permit": "allow", "action": "subscribe"}
    ]
    """
    b = acl_broker(make_broker, tmp_path, rules=rules, no_match="deny")
    sub = client(open_client, b, 5, "bob")
    assert sub.subscribe([("#", 0)]) == [0]
    cam2 = client(open_client, b, 5, client_id="cam-2")
    cam1 = client(open_client, b, 5, client_id="cam-1")
    assert cam2.publish("lo/a", b"1", qos=1).reason in ACCEPTED  # 127.0.0.0/8
    assert cam2.publish("cam/cam-2/img", b"2", qos=1).reason in ACCEPTED  # or: clientid
    assert cam1.publish("lo/b", b"3", qos=1).reason in ACCEPTED
    # cam-1's own rule needs ::1 as well, and we come from 127.0.0.1: no rule, no_match deny.
    assert cam1.publish("cam/cam-1/img", b"no", qos=1).reason == 0x87
    assert cam2.publish("cam/cam-1/img", b"no", qos=1).reason == 0x87  # %c is cam-2
    # The ipaddr deny rule comes before the allow rule for the same topics.
    assert cam2.publish("blocked/x", b"no", qos=1).reason == 0x87
    got = sub.publishes(3)
    assert [p.payload for p in got] == [b"1", b"2", b"3"]
    sub.no_publish(0.5)


def test_reload_changes_the_acl_of_live_connections(make_broker, open_client, tmp_path):
    b = acl_broker(make_broker, tmp_path)
    monitor = client(open_client, b, 5, "bob", client_id="monitor")
    assert monitor.subscribe([("#", 1)]) == [0x87]
    assert monitor.subscribe([("public/#", 1)]) == [1]
    alice = client(open_client, b, 5, "alice")
    assert alice.publish("public/a", b"before", qos=1).reason in ACCEPTED
    assert [p.payload for p in monitor.publishes(1)] == [b"before"]

    write(tmp_path / "nanomq_acl.conf", """rules = [
      {"permit": "deny", "username": "alice", "action": "publish", "topics": ["public/#"]}
      {"permit": "allow"}
    ]
    """)
    rc = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", b.pid_path],
                        capture_output=True, text=True, timeout=30)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    wait_for(lambda: "reload" in b.log_text(), 5, what="the reload logged")
    # The same connections follow the new rules: alice's publish is now refused and the
    # monitor may subscribe to everything.
    wait_for(lambda: alice.publish("public/a", b"after", qos=1).reason == 0x87, 10,
             what="alice refused after the reload")
    # Each shard takes the new settings on its own loop: the monitor may be on another one.
    wait_for(lambda: monitor.subscribe([("#", 0)]) == [0], 10,
             what="the monitor may subscribe to # after the reload")
    bob = client(open_client, b, 5, "bob")
    bob.publish("public/b", b"bob", qos=1)
    assert [p.payload for p in monitor.publishes(1)] == [b"bob"]
    assert alice.is_open()


def test_denials_are_counted_in_the_shutdown_totals(make_broker, open_client, tmp_path):
    b = acl_broker(make_broker, tmp_path)
    alice = client(open_client, b, 5, "alice")
    assert alice.publish("ro/x", b"x", qos=1).reason == 0x87
    assert alice.subscribe([("secret/a", 0)]) == [0x87]
    assert connack(b, 5, username="alice", password="wrong") == 0x86
    assert connack(b, 5) == 0, "no password needed: allow_anonymous defaults to true"
    alice.close()
    b.stop()
    log = b.log_text()
    assert "1 CONNECTs refused by auth, 2 operations denied by the ACL" in log, log[-1500:]


# -- MQTT 5 enhanced authentication: SCRAM-SHA-256 (RFC 7677), a client written here from
# RFC 5802 with Python's hashlib/hmac (no MQTT library implements it).

class Scram:
    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"),
                                         self.nonce)

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), server_first
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_final = b"v=" + base64.b64encode(
            hmac.new(server_key, auth_message, hashlib.sha256).digest())
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()


SCRAM = "SCRAM-SHA-256"


def auth_packet(reason, data, method=SCRAM):
    return mqttraw.packet(mqttraw.AUTH, 0, bytes([reason]) + mqttraw.encode_properties(
        [(mqttraw.P_AUTH_METHOD, method), (mqttraw.P_AUTH_DATA, data)]))


def scram_connect(broker, user, password, client_id=None, **kw):
    """CONNECT with SCRAM-SHA-256 and run the exchange. Returns (client, CONNACK, Scram)."""
    c = mqttraw.RawClient(broker.host, broker.port, 5)
    s = Scram(user, password)
    c.send(mqttraw.connect_packet(client_id or unique_id("scram"), 5, props={
        mqttraw.P_AUTH_METHOD: SCRAM, mqttraw.P_AUTH_DATA: s.client_first()}, **kw))
    p = c.recv()
    if p.type == mqttraw.CONNACK:
        return c, p, s
    assert p.type == mqttraw.AUTH and p.reason == 0x18, p
    assert p.props[mqttraw.P_AUTH_METHOD] == SCRAM
    c.send(auth_packet(0x18, s.client_final(p.props[mqttraw.P_AUTH_DATA])))
    return c, c.wait_for(mqttraw.CONNACK), s


def scram_broker(make_broker, tmp_path, extra="", **settings):
    pwfile = str(tmp_path / "mosq.passwd")
    subprocess.run(["mosquitto_passwd", "-c", "-b", pwfile, "hashed", "h4sh"], check=True,
                   capture_output=True, timeout=30)
    acl = write(tmp_path / "acl.conf", """rules = [
      {"permit": "allow", "action": "pubsub", "topics": ["home/%u/#"]}
      {"permit": "deny"}
    ]
    """)
    return auth_broker(make_broker, tmp_path,
                       'allow_anonymous = false\npassword { "dev=1,x": "pencil-2" }\n'
                       'password_file = "%s"\nacl = "%s"\n%s' % (pwfile, acl, extra),
                       **settings)


def test_scram_sha256_connect_and_reauthenticate(make_broker, tmp_path):
    b = scram_broker(make_broker, tmp_path)
    c, ack, s = scram_connect(b, "dev=1,x", "pencil-2")
    try:
        assert ack.reason == 0, ack
        # The server proves it knows the password too (server-final-message).
        assert ack.props[mqttraw.P_AUTH_METHOD] == SCRAM
        assert ack.props[mqttraw.P_AUTH_DATA] == s.expected_final
        # The proven user is the one the ACL sees (%u), though CONNECT had no User Name.
        assert c.subscribe([("home/dev=1,x/#", 1), ("home/other/#", 1)]) == [1, 0x87]
        assert c.publish("home/dev=1,x/t", b"hi", qos=1).reason == 0
        assert c.publishes(1)[0].payload == b"hi"
        assert c.publish("home/other/t", b"no", qos=1).reason == 0x87

        # Re-authentication (AUTH 0x19) on the live connection.
        r = Scram("dev=1,x", "pencil-2")
        c.send(auth_packet(0x19, r.client_first()))
        p = c.wait_for(mqttraw.AUTH)
        assert p.reason == 0x18, p
        c.send(auth_packet(0x18, r.client_final(p.props[mqttraw.P_AUTH_DATA])))
        p = c.wait_for(mqttraw.AUTH)
        assert p.reason == 0x00 and p.props[mqttraw.P_AUTH_DATA] == r.expected_final, p
        assert c.publish("home/dev=1,x/t", b"again", qos=1).reason == 0
        assert c.publishes(1)[0].payload == b"again"

        # A failed re-authentication ends the connection: DISCONNECT 0x87.
        w = Scram("dev=1,x", "pencil-3")
        c.send(auth_packet(0x19, w.client_first()))
        p = c.wait_for(mqttraw.AUTH)
        c.send(auth_packet(0x18, w.client_final(p.props[mqttraw.P_AUTH_DATA])))
        got = c.wait_closed(5)
        assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].reason == 0x87, got
    finally:
        c.close()
    assert "pencil" not in b.log_text()


@pytest.mark.parametrize("user,password", [("dev=1,x", "pencil-3"), ("nobody", "pencil-2"),
                                           ("hashed", "h4sh")])
def test_scram_refusals_look_alike(make_broker, tmp_path, user, password):
    """A wrong password, an unknown user and a user whose stored password is a hash (SCRAM
    needs it in plain text) all get a server-first-message and then CONNACK 0x86: the
    answers do not tell which users exist. The log says which it was."""
    b = scram_broker(make_broker, tmp_path)
    c, ack, _ = scram_connect(b, user, password)
    try:
        assert ack.reason == 0x86, ack
        c.wait_closed(5)
    finally:
        c.close()
    why = {"dev=1,x": "wrong password", "nobody": "unknown user", "hashed": "stored hashed"}
    wait_for(lambda: why[user] in b.log_text(), 5, what="the refusal's reason in the log")


def test_scram_protocol_errors_and_methods(make_broker, open_client, tmp_path):
    b = scram_broker(make_broker, tmp_path, connect_timeout="1s")

    def connack_with(props):
        c = mqttraw.RawClient(b.host, b.port, 5)
        try:
            c.send(mqttraw.connect_packet(unique_id("m"), 5, props=props))
            return c.wait_for(mqttraw.CONNACK).reason
        finally:
            c.close()
    assert connack_with({mqttraw.P_AUTH_METHOD: "PLAIN-X", mqttraw.P_AUTH_DATA: b"x"}) == 0x8C
    assert connack_with({mqttraw.P_AUTH_METHOD: SCRAM, mqttraw.P_AUTH_DATA: b"x,,junk"}) == 0x87
    assert connack_with({mqttraw.P_AUTH_METHOD: SCRAM}) == 0x87  # no client-first-message

    def mid_exchange(second_packet):
        """CONNECT with SCRAM, then `second_packet` instead of the client-final AUTH."""
        c = mqttraw.RawClient(b.host, b.port, 5)
        s = Scram("dev=1,x", "pencil-2")
        c.send(mqttraw.connect_packet(unique_id("x"), 5, props={
            mqttraw.P_AUTH_METHOD: SCRAM, mqttraw.P_AUTH_DATA: s.client_first()}))
        assert c.wait_for(mqttraw.AUTH).reason == 0x18
        if second_packet is not None:
            c.send(second_packet)
        got = c.wait_closed(5)
        c.close()
        return got
    for pkt in (mqttraw.publish_packet("home/dev=1,x/t", b"early", version=5),
                auth_packet(0x18, b"c=biws", method="OTHER"),
                auth_packet(0x19, b"n,,n=dev=1,x,r=abc")):
        got = mid_exchange(pkt)
        assert [(p.type, p.reason) for p in got] == [(mqttraw.CONNACK, 0x82)], got
    # An exchange the client never finishes is closed by mqtt.connect_timeout, no CONNACK.
    assert mid_exchange(None) == []
    # AUTH from a client that named no method is a protocol error [MQTT-4.12.0-1].
    plain = open_client(b, 5, connect=False)
    assert plain.connect(unique_id("p"), username="dev=1,x", password="pencil-2").reason == 0
    plain.send(auth_packet(0x19, b"n,,n=dev=1,x,r=abc"))
    got = plain.wait_closed(5)
    assert got and got[-1].type == mqttraw.DISCONNECT and got[-1].reason == 0x82, got


def test_scram_without_a_password_file_is_an_unknown_method(broker):
    c = mqttraw.RawClient(broker.host, broker.port, 5)
    try:
        c.send(mqttraw.connect_packet(unique_id("n"), 5, props={
            mqttraw.P_AUTH_METHOD: SCRAM, mqttraw.P_AUTH_DATA: b"n,,n=u,r=abc"}))
        assert c.wait_for(mqttraw.CONNACK).reason == 0x8C
    finally:
        c.close()
