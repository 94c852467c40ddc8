"""Shared helpers for the integration tests: target selection, deadlines, a paho-mqtt
wrapper that collects messages, and MQTT version parametrisation."""

import os
import socket
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

TARGET = os.environ.get("HARBOR_TEST_TARGET", "harbormq")
HOST = "127.0.0.1"


def is_mosquitto():
    return TARGET == "mosquitto"


def free_port():
    """A port that was free a moment ago (bind port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=5.0, interval=0.02, what="condition"):
    """Poll predicate until it returns a truthy value (returned) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_log(path):
    """A broker log file as text ("" when it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def wait_for_listener(proc, host, port, timeout, log_tail, on_fail):
    """Wait until `proc` accepts TCP on host:port. If it exits first, or the deadline passes,
    call on_fail() (clean-up) and fail the test with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            on_fail()
            pytest.fail("broker exited with %d during startup; log:\n%s" % (rc, log_tail()))
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            on_fail()
            pytest.fail("broker did not accept TCP on %s:%d within %.0fs; log:\n%s" % (
                host, port, timeout, log_tail()))
        time.sleep(0.02)


def both_versions(fn):
    """Parametrize a test over MQTT 3.1.1 (4) and 5.0 (5) as argument `version`."""
    return pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])(fn)


_counter = [0]


def unique_id(prefix="t"):
    _counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _counter[0])


class PahoClient:
    """paho-mqtt 1.6 client running its network loop in a thread, collecting messages.

    version: 4 (3.1.1), 3 (3.1) or 5. expect(n, timeout) waits for n messages in total.
    transport="websockets" connects to `port` (a listeners.ws port) on `ws_path`.
    tls: keywords of paho's tls_set (e.g. ca_certs=...), for `port` a listeners.ssl port.
    """

    def __init__(self, broker, version=4, client_id=None, clean=True, session_expiry=None,
                 keepalive=30, transport="tcp", port=None, ws_path="/mqtt", tls=None):
        self.version = version
        self.client_id = client_id if client_id is not None else unique_id("paho")
        proto = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}[version]
        if version == 5:
            self.c = paho.Client(self.client_id, protocol=proto, transport=transport)
        else:
            self.c = paho.Client(self.client_id, clean_session=clean, protocol=proto,
                                 transport=transport)
        if transport == "websockets":
            self.c.ws_set_options(path=ws_path)
        if tls is not None:
            self.c.tls_set(**tls)
        port = port or broker.port
        self.lock = threading.Condition()
        self.messages = []
        self.connack = None
        self.subacks = {}
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        props = None
        if version == 5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            self.c.connect(broker.host, port, keepalive, clean_start=clean,
                           properties=props)
        else:
            self.c.connect(broker.host, port, keepalive)
        self.c.loop_start()
        with self.lock:
            ok = self.lock.wait_for(lambda: self.connack is not None, 10)
        assert ok, "paho client %s got no CONNACK" % self.client_id
        assert self.connack[1] == 0, "CONNACK rc=%s" % (self.connack[1],)

    def _on_connect(self, client, userdata, flags, rc, props=None):
        with self.lock:
            self.connack = (flags, int(rc) if not hasattr(rc, "value") else rc.value)
            self.lock.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append(msg)
            self.lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        with self.lock:
            self.subacks[mid] = [g if isinstance(g, int) else g.value for g in granted]
            self.lock.notify_all()

    @property
    def session_present(self):
        return bool(self.connack[0].get("session present"))

    def subscribe(self, topic, qos=0, timeout=5.0, **opts):
        if self.version == 5:
            rc, mid = self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **opts))
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == 0
        with self.lock:
            ok = self.lock.wait_for(lambda: mid in self.subacks, timeout)
        assert ok, "no SUBACK for %s" % topic
        return self.subacks[mid]

    def publish(self, topic, payload, qos=0, retain=False, timeout=5.0):
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish of %r not completed" % (payload,)
        return info

    def expect(self, n, timeout=5.0):
        with self.lock:
            self.lock.wait_for(lambda: len(self.messages) >= n, timeout)
            got = list(self.messages)
        assert len(got) >= n, "expected %d messages within %.1fs, got %d: %r" % (
            n, timeout, len(got), [(m.topic, m.payload[:30]) for m in got[-5:]])
        return got

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def exchange_both_ways(a, b, payload, timeout=20):
    """Two PahoClients: `payload` at QoS 1 from b to a and from a to b, each received whole."""
    assert a.subscribe("big/to-a", 1) == [1]
    assert b.subscribe("big/to-b", 1) == [1]
    b.publish("big/to-a", payload, 1, timeout=timeout)
    a.publish("big/to-b", payload, 1, timeout=timeout)
    assert a.expect(1, timeout=timeout)[0].payload == payload
    assert b.expect(1, timeout=timeout)[0].payload == payload

