"""MQTT.js (npm `mqtt`, the client of browsers and Node) against HarborMQ over ws:// and
wss:// (issue 14), in 3.1.1 and 5.0: it subscribes and receives what a paho client publishes
over TCP at QoS 0, 1 and 2, retained messages included, then publishes at QoS 1 and 2 what
the paho client receives; a 256 KB payload crosses many WebSocket frames. MQTT.js runs in
Node from tests/integration/mqttjs (installed by scripts/install-test-tools.sh, which
`make test` runs); a missing install is a failure, not a skip."""

import base64
import json
import os
import subprocess
import tempfile
import threading

import pytest

from helpers import HOST, PahoClient, free_port, is_mosquitto, unique_id, wait_for
from test_tls import Pki
from test_websocket import ws_broker  # noqa: F401 (fixture)
from test_wss import WSS_PATH, wss_broker  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(is_mosquitto(), reason="HarborMQ's WebSocket listeners")

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "mqttjs")
CLIENT_JS = os.path.join(JS_DIR, "client.js")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def require_mqttjs():
    installed = os.path.join(JS_DIR, "node_modules", "mqtt", "package.json")
    assert os.path.exists(installed), (
        "MQTT.js is not installed: run `sh scripts/install-test-tools.sh` (make test does)")


class MqttJs:
    """client.js in a Node process, its JSON lines read on a thread."""

    def __init__(self, plan):
        require_mqttjs()
        fd, self.plan_path = tempfile.mkstemp(prefix="mqttjs-plan-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(plan, f)  # a file: a large payload would not fit in argv
        self.proc = subprocess.Popen(["node", CLIENT_JS, self.plan_path], cwd=JS_DIR,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def event(self, name, timeout=15):
        def find():
            with self.lock:
                for e in self.events:
                    if e["event"] in (name, "error"):
                        return e
            return None
        wait_for(lambda: find() is not None or self.proc.poll() is not None, timeout,
                 what="MQTT.js event %s" % name)
        if find() is None:
            self.reader.join(5)  # it exited: its last lines may still be on their way
        e = find()
        assert e is not None, "MQTT.js exited (%s) without %s: %s" % (
            self.proc.poll(), name, self.proc.stderr.read())
        assert e["event"] == name, "MQTT.js: %s" % e
        return e

    def finish(self, timeout=15):
        done = self.event("done", timeout)
        assert self.proc.wait(timeout) == 0
        return done

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if os.path.exists(self.plan_path):
            os.unlink(self.plan_path)


def b64(data):
    return base64.b64encode(data).decode()


def exchange(broker, url, version, ca=None, payload_size=16):
    """Paho over TCP publishes a retained message, then QoS 0/1/2 messages to MQTT.js over
    `url`; MQTT.js answers with QoS 1 and 2 publishes that paho receives."""
    tag = unique_id("js")
    big = os.urandom(payload_size)
    paho_c = PahoClient(broker, version)
    paho_c.subscribe("from-js/%s/#" % tag, qos=2)
    paho_c.publish("to-js/%s/retained" % tag, b"kept", qos=1, retain=True)
    js = MqttJs({"url": url, "protocolVersion": version, "clientId": unique_id("mqttjs"),
                 "ca": ca, "subscribe": [{"topic": "to-js/%s/#" % tag, "qos": 2}],
                 "expect": 4,
                 "publish": [{"topic": "from-js/%s/q1" % tag, "payload": b64(b"one"), "qos": 1},
                             {"topic": "from-js/%s/q2" % tag, "payload": b64(big), "qos": 2}]})
    try:
        assert js.event("subscribed")["granted"] == [2]
        for qos in (0, 1, 2):
            paho_c.publish("to-js/%s/q%d" % (tag, qos), big if qos == 2 else b"q%d" % qos, qos)
        done = js.finish()
        got = {m["topic"].rsplit("/", 1)[1]: m for m in done["messages"]}
        assert set(got) == {"retained", "q0", "q1", "q2"}, done["messages"]
        assert got["retained"]["retain"] and base64.b64decode(got["retained"]["payload"]) == b"kept"
        assert base64.b64decode(got["q1"]["payload"]) == b"q1" and got["q1"]["qos"] == 1
        assert base64.b64decode(got["q2"]["payload"]) == big and got["q2"]["qos"] == 2
        assert done["published"] == 2
        msgs = paho_c.expect(2, timeout=10)
        by_topic = {m.topic.rsplit("/", 1)[1]: m for m in msgs}
        assert by_topic["q1"].payload == b"one" and by_topic["q1"].qos == 1
        assert by_topic["q2"].payload == big and by_topic["q2"].qos == 2
    finally:
        js.kill()
        paho_c.publish("to-js/%s/retained" % tag, b"", qos=1, retain=True)  # clear it
        paho_c.close()


@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_over_websocket(ws_broker, version):  # noqa: F811
    exchange(ws_broker, "ws://%s:%d/mqtt" % (HOST, ws_broker.ws_port), version)


@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_over_secure_websocket(wss_broker, pki, version):  # noqa: F811
    exchange(wss_broker, "wss://localhost:%d%s" % (wss_broker.wss_port, WSS_PATH), version,
             ca=pki.ca[0])


def test_mqttjs_large_payload_over_websocket(ws_broker):  # noqa: F811
    exchange(ws_broker, "ws://%s:%d/mqtt" % (HOST, ws_broker.ws_port), 5,
             payload_size=256 * 1024)


def test_mqttjs_refuses_an_untrusted_wss_certificate(wss_broker, pki, tmp_path):  # noqa: F811
    (tmp_path / "other").mkdir()
    other = Pki(tmp_path / "other")  # another CA: the broker's certificate is not from it
    js = MqttJs({"url": "wss://localhost:%d%s" % (wss_broker.wss_port, WSS_PATH),
                 "protocolVersion": 4, "clientId": unique_id("mqttjs"), "ca": other.ca[0]})
    try:
        e = js.event("subscribed")
    except AssertionError as err:
        assert "certificate" in str(err) or "self-signed" in str(err) or "issuer" in str(err), err
    else:
        raise AssertionError("MQTT.js connected through an untrusted certificate: %s" % e)
    finally:
        js.kill()
    # The broker goes on serving: MQTT.js with the right CA gets in.
    ok = MqttJs({"url": "wss://localhost:%d%s" % (wss_broker.wss_port, WSS_PATH),
                 "protocolVersion": 4, "clientId": unique_id("mqttjs"), "ca": pki.ca[0]})
    try:
        ok.finish()
    finally:
        ok.kill()
