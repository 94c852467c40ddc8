"""Bridges changed by `harbormq reload` (issue 13): one added, one removed, one whose
forward topic changed (what waited for the remote is not lost), and a reload whose bridge
TLS file cannot be used refused whole. A real Mosquitto is the remote."""

import subprocess

import pytest

from broker_harness import HARBORMQ_BIN, STORE_MQTT, STORE_OPTIONS
from helpers import PahoClient, unique_id, wait_for
from remote_mosquitto import RemoteMosquitto, collect
from test_bridge import bridge_conf, log_has, publish_many, take_the_remote_down

pytestmark = pytest.mark.harbormq_only


@pytest.fixture
def remote(tmp_path):
    with RemoteMosquitto(tmp_path / "remote", persistence=True,
                         extra_lines=("log_type all",)) as r:
        yield r


def reload_with(b, extra_conf):
    b.extra_conf = extra_conf
    b.write_config()
    r = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", b.pid_path], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_a_bridge_added_by_reload_forwards(make_broker, remote):
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    b = make_broker()
    rc, out = reload_with(b, bridge_conf(remote.port, clientid="edge-add"))
    assert rc == 0, out
    wait_for(lambda: log_has(b, 'bridge "cloud" added'), 10, what="the added line")
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    acked = publish_many(b.port, "up/a%d", 10)
    got = remote_sub.wait_count(10, timeout=10)
    assert [m.payload for m in got] == acked
    remote_sub.stop()


def test_a_bridge_removed_by_reload_closes_its_link_only(make_broker, remote):
    keep = bridge_conf(remote.port, name="keep", clientid="edge-keep",
                       forwards=['{ local_topic = "k/#", prefix = "kept/", qos = 1 }'])
    gone = bridge_conf(remote.port, name="gone", clientid="edge-gone")
    b = make_broker(extra_conf=keep + gone)
    for name in ("keep", "gone"):
        wait_for(lambda: log_has(b, 'bridge "%s" connected to' % name), 10, what=name + " up")
    local = PahoClient(b, client_id=unique_id("local"))
    try:
        remote_sub = collect(remote.port, "kept/#", qos=1)
        rc, out = reload_with(b, keep)
        assert rc == 0, out
        wait_for(lambda: log_has(b, 'bridge "gone" removed'), 10, what="the removed line")
        wait_for(lambda: "Client edge-gone closed its connection" in remote.log_text()
                 or "Client edge-gone disconnected" in remote.log_text(), 10,
                 what="the removed bridge's link closed at the remote")
        assert "Client edge-keep disconnected" not in remote.log_text()
        wait_for(lambda: log_has(b, '"gone" is no longer configured: its session and 0 waiting'),
                 10, what="the removed bridge's session deleted, with its count")
        assert not log_has(b, 'bridge "keep" removed')
        assert not log_has(b, 'bridge "keep" changed')
        # The other client and bridge still work.
        assert local.subscribe("x/#", 1) == [1]
        local.publish("x/1", b"hi", qos=1)
        assert local.expect(1)[0].payload == b"hi"
        acked = publish_many(b.port, "k/%d", 5)
        assert [m.payload for m in remote_sub.wait_count(5, timeout=10)] == acked
        remote_sub.stop()
    finally:
        local.close()
    assert b.running()


def test_a_changed_forward_topic_applies_and_loses_nothing_queued(make_broker, remote):
    sub_id = unique_id("remote-sub")
    remote_sub = collect(remote.port, "#", qos=1, client_id=sub_id, clean=False)
    conf = lambda prefix: bridge_conf(  # noqa: E731
        remote.port, clientid="edge-change",
        forwards=['{ local_topic = "up/#", prefix = "%s", qos = 1 }' % prefix])
    b = make_broker(mqtt_defaults=STORE_MQTT, extra_conf=conf("old/"), **STORE_OPTIONS)
    take_the_remote_down(b, remote, remote_sub)
    queued = publish_many(b.port, "up/q%d", 50)
    assert len(queued) == 50
    rc, out = reload_with(b, conf("new/"))
    assert rc == 0, out
    wait_for(lambda: log_has(b, 'bridge "cloud" changed'), 10, what="the changed line")
    remote.start()
    remote_sub = collect(remote.port, "#", qos=1, client_id=sub_id, clean=False)
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    after = publish_many(b.port, "up/n%d", 5)
    got = remote_sub.wait_count(55, timeout=30)
    assert set(queued + after) <= set(m.payload for m in got)
    fresh = [m for m in got if m.payload in after]
    assert all(m.topic.startswith("new/up/") for m in fresh), [m.topic for m in fresh]
    remote_sub.stop()


def test_an_unusable_bridge_tls_file_refuses_the_reload(make_broker, remote, tmp_path):
    running = bridge_conf(remote.port, clientid="edge-tls-keep")
    b = make_broker(extra_conf=running)
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    missing = tmp_path / "missing-ca.pem"
    broken = running + """
bridges.mqtt.tls1 {
  server = "mqtts://127.0.0.1:%d"
  forwards = [ { local_topic = "t/#", qos = 1 } ]
  ssl { cacertfile = "%s" }
}
""" % (remote.port, missing)
    rc, out = reload_with(b, broken)
    assert rc != 0, out
    assert "bridges.mqtt.tls1.ssl.cacertfile" in out and str(missing) in out, out
    assert ".conf:" in out, out  # file and line
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    acked = publish_many(b.port, "up/t%d", 5)
    assert [m.payload for m in remote_sub.wait_count(5, timeout=10)] == acked
    remote_sub.stop()
    assert not log_has(b, 'bridge "tls1"')
    assert not log_has(b, 'bridge "cloud" removed')
