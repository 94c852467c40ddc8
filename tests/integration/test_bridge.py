"""MQTT bridges (issue 13) against a real Mosquitto as the remote: both directions with
topic mapping, the remote down while publishers keep sending, our broker kill -9ed while
the remote is down, a silent link (no FIN, no RST), fail-over through hybrid_servers, QoS 2
end to end across a reset link, and a two-way bridge that does not loop.

Every message acknowledged to a local publisher must reach the remote subscriber."""

import subprocess
import time

import paho.mqtt.client as paho
import pytest

import mqttraw
from broker_harness import STORE_MQTT, STORE_OPTIONS
from fault_proxy import FaultProxy
from helpers import HOST, free_port, read_log, unique_id, wait_for
from remote_mosquitto import RemoteMosquitto, collect

pytestmark = pytest.mark.harbormq_only


def bridge_conf(server_port, name="cloud", version=4, keepalive="10s", forwards=None,
                subscriptions=None, extra="", clientid=None):
    fwd = forwards if forwards is not None else [
        '{ local_topic = "up/#", remote_topic = "", prefix = "edge1/", qos = 1 }']
    subs = subscriptions if subscriptions is not None else []
    return """
bridges.mqtt.%s {
  server = "mqtt-tcp://127.0.0.1:%d"
  proto_ver = %d
  clientid = "%s"
  keepalive = %s
  clean_start = false
  backoff_max = 2s
  forwards = [ %s ]
  subscription = [ %s ]
  %s
}
""" % (name, server_port, version, clientid or unique_id("bridge"), keepalive, "\n".join(fwd),
       "\n".join(subs), extra)


def publish_many(port, topic_fmt, n, qos=1, version=4):
    """Publishes n messages through paho with QoS `qos`; returns the payloads whose
    PUBACK/PUBCOMP came back (acknowledged to the publisher)."""
    proto = paho.MQTTv5 if version == 5 else paho.MQTTv311
    c = paho.Client(unique_id("pub"), protocol=proto)
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.connect(HOST, port, 30)
    c.loop_start()
    infos = []
    try:
        for i in range(n):
            payload = b"m%05d" % i
            infos.append((payload, c.publish(topic_fmt % i, payload, qos)))
        acked = []
        for payload, info in infos:
            info.wait_for_publish(20)
            if info.is_published():
                acked.append(payload)
        return acked
    finally:
        c.disconnect()
        c.loop_stop()


def log_has(broker, text):
    return text in read_log(broker.log_path)


def take_the_remote_down(broker, remote, remote_sub):
    """Once the bridge is up: the remote's subscriber and then the remote stop; returns when
    the broker has seen its link lost."""
    wait_for(lambda: log_has(broker, 'bridge "cloud" connected to'), 10, what="bridge link up")
    remote_sub.stop()
    remote.stop()
    wait_for(lambda: log_has(broker, 'bridge "cloud": link to'), 10, what="bridge link lost")


@pytest.fixture
def remote(tmp_path):
    # log_type all: the tests wait for the bridge's SUBSCRIBE in the remote's log.
    with RemoteMosquitto(tmp_path / "remote", persistence=True,
                         extra_lines=("log_type all",)) as r:
        yield r


def test_forwards_local_messages_and_brings_remote_ones_in(make_broker, remote, paho_client):
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    subs = ['{ remote_topic = "cmd/#", local_topic = "", prefix = "fromcloud/", qos = 1 }']
    b = make_broker(extra_conf=bridge_conf(remote.port, subscriptions=subs, clientid="edge1"))
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    local_sub = paho_client(b)
    local_sub.subscribe("fromcloud/#", qos=1)
    wait_for(lambda: "Received SUBSCRIBE from edge" in remote.log_text(), 10,
             what="the bridge's SUBSCRIBE at the remote")
    acked = publish_many(b.port, "up/t%d", 20)
    assert len(acked) == 20
    got = remote_sub.wait_count(20, timeout=10)
    assert [m.topic for m in got] == ["edge1/up/t%d" % i for i in range(20)]
    assert [m.payload for m in got] == acked
    # Not forwarded: no forward rule matches.
    publish_many(b.port, "other/t%d", 1)
    # Remote -> local, mapped.
    c = paho.Client(unique_id("rpub"))
    c.connect(HOST, remote.port, 30)
    c.loop_start()
    c.publish("cmd/reboot", b"now", 1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    msgs = local_sub.expect(1, timeout=10)
    assert (msgs[0].topic, msgs[0].payload) == ("fromcloud/cmd/reboot", b"now")
    remote_sub.expect_no_more(20, 0.5)
    assert all(not m.topic.startswith("edge1/other") for m in remote_sub.messages)
    remote_sub.stop()


def test_remote_down_while_publishers_send_loses_nothing(make_broker, remote):
    sub_id = unique_id("remote-sub")
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    b = make_broker(mqtt_defaults=STORE_MQTT, extra_conf=bridge_conf(remote.port),
                    **STORE_OPTIONS)
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    remote_sub.stop()
    remote.stop()
    wait_for(lambda: log_has(b, 'bridge "cloud": link to'), 10, what="bridge link lost")
    acked = publish_many(b.port, "up/n%d", 500)
    assert len(acked) == 500, "the local broker acknowledges while the remote is down"
    remote.start()
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    got = remote_sub.wait_count(500, timeout=30)
    payloads = [m.payload for m in got]
    assert sorted(set(payloads)) == sorted(acked)
    # In order (QoS 1 may repeat a message after a reconnect, never reorder the first copies).
    firsts = list(dict.fromkeys(payloads))
    assert firsts == acked
    remote_sub.stop()


def test_kill9_while_the_remote_is_down_then_both_back(make_broker, remote):
    sub_id = unique_id("remote-sub")
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    b = make_broker(mqtt_defaults=STORE_MQTT, extra_conf=bridge_conf(remote.port),
                    **STORE_OPTIONS)
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    remote_sub.stop()
    remote.stop()
    acked = publish_many(b.port, "up/k%d", 300)
    assert len(acked) == 300
    b.kill9()
    b.start()
    wait_for(lambda: log_has(b, '300 message(s) waiting'), 10, what="restored bridge queue")
    remote.start()
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    got = remote_sub.wait_count(300, timeout=30)
    assert set(m.payload for m in got) == set(acked)
    remote_sub.stop()


def test_silent_link_is_detected_and_everything_is_resent(make_broker, remote):
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    with FaultProxy(HOST, remote.port) as proxy:
        b = make_broker(mqtt_defaults=STORE_MQTT,
                        extra_conf=bridge_conf(proxy.port, keepalive="2s"), **STORE_OPTIONS)
        wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
        proxy.blackhole()
        t0 = time.monotonic()
        acked = publish_many(b.port, "up/s%d", 50)
        assert len(acked) == 50
        wait_for(lambda: log_has(b, 'bridge "cloud": link to'), 10, what="silent link dropped")
        detected = time.monotonic() - t0
        # Within 1.5x the keep alive of 2 s (plus the sweep's and this poll's granularity).
        assert detected <= 3.5, "silent link noticed after %.1f s" % detected
        proxy.pass_through()
        got = remote_sub.wait_count(50, timeout=30)
        assert set(m.payload for m in got) >= set(acked)
    remote_sub.stop()


def test_hybrid_servers_fail_over(make_broker, remote):
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    dead = free_port()  # nothing listens there
    conf = bridge_conf(dead, extra='hybrid_servers = ["mqtt-tcp://127.0.0.1:%d"]' % remote.port)
    b = make_broker(extra_conf=conf)
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to 127.0.0.1:%d' % remote.port), 15,
             what="bridge on the second server")
    assert log_has(b, "cannot connect to 127.0.0.1:%d" % dead)
    acked = publish_many(b.port, "up/h%d", 10)
    got = remote_sub.wait_count(10, timeout=10)
    assert [m.payload for m in got] == acked
    remote_sub.stop()


def test_qos2_end_to_end_exactly_once_across_a_reset(make_broker, remote):
    remote_sub = collect(remote.port, "edge1/#", qos=2, version=5)
    with FaultProxy(HOST, remote.port) as proxy:
        extra = "conn_properties { session_expiry_interval = 3600 }"
        fwd = ['{ local_topic = "up/#", remote_topic = "", prefix = "edge1/", qos = 2 }']
        b = make_broker(mqtt_defaults=STORE_MQTT,
                        extra_conf=bridge_conf(proxy.port, version=5, forwards=fwd, extra=extra),
                        **STORE_OPTIONS)
        wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
        proxy.throttle(4000)  # slow enough that the reset lands mid-stream
        acked = publish_many(b.port, "up/q%d", 100, qos=2)
        assert len(acked) == 100
        wait_for(lambda: remote_sub.count() >= 10, 20, what="first messages at the remote")
        proxy.reset()
        proxy.pass_through()
        got = remote_sub.wait_count(100, timeout=30)
        remote_sub.expect_no_more(100, 1.0)
        payloads = [m.payload for m in remote_sub.messages]
        assert sorted(payloads) == sorted(acked), "QoS 2: each message exactly once"
        assert all(m.qos == 2 for m in got)
    remote_sub.stop()


def test_two_way_bridge_does_not_loop(make_broker, remote, paho_client):
    fwd = ['{ local_topic = "shared/#", remote_topic = "", qos = 1 }']
    subs = ['{ remote_topic = "shared/#", local_topic = "", qos = 1, nolocal = true }']
    b = make_broker(extra_conf=bridge_conf(remote.port, version=5, forwards=fwd,
                                           subscriptions=subs, clientid="edge2"))
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
    local_sub = paho_client(b)
    local_sub.subscribe("shared/#", qos=1)
    remote_sub = collect(remote.port, "shared/#", qos=1)
    wait_for(lambda: "Received SUBSCRIBE from edge" in remote.log_text(), 10,
             what="the bridge's SUBSCRIBE at the remote")
    publish_many(b.port, "shared/local%d", 1)
    c = paho.Client(unique_id("rpub"))
    c.connect(HOST, remote.port, 30)
    c.loop_start()
    c.publish("shared/remote0", b"r", 1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    local_sub.expect(2, timeout=10)
    remote_sub.wait_count(2, timeout=10)
    # A loop would keep them coming back.
    remote_sub.expect_no_more(2, 1.5)
    assert sorted(m.topic for m in local_sub.messages) == ["shared/local0", "shared/remote0"]
    assert sorted(m.topic for m in remote_sub.messages) == ["shared/local0", "shared/remote0"]
    remote_sub.stop()


def test_bridge_queue_is_bounded_by_the_cache_not_max_mqueue_len(make_broker, remote):
    sub_id = unique_id("remote-sub")
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    conf = bridge_conf(remote.port) + "\nbridges.mqtt.cache { disk_cache_size = 400 }\n"
    mqtt = dict(STORE_MQTT, max_mqueue_len=100)  # a client session would keep 100
    b = make_broker(mqtt_defaults=mqtt, extra_conf=conf, **STORE_OPTIONS)
    take_the_remote_down(b, remote, remote_sub)
    acked = publish_many(b.port, "up/c%d", 500)
    assert len(acked) == 500
    wait_for(lambda: log_has(b, "bridges.mqtt.cache.disk_cache_size=400"), 10,
             what="the overflow logged, naming the key")
    remote.start()
    remote_sub = collect(remote.port, "edge1/#", qos=1, client_id=sub_id, clean=False)
    got = remote_sub.wait_count(400, timeout=30)
    remote_sub.expect_no_more(400, 1.0)
    assert [m.payload for m in got] == acked[:400], "the first 400 kept, the newest dropped"
    remote_sub.stop()


def test_remote_kill9_with_messages_in_flight_resends_them(make_broker, remote):
    """The remote freezes (SIGSTOP: nothing acknowledged), is kill -9ed and comes back empty:
    what it never acknowledged is resent on the next link."""
    import os
    import signal

    remote_sub = collect(remote.port, "edge1/#", qos=1)
    with FaultProxy(HOST, remote.port) as proxy:
        b = make_broker(mqtt_defaults=STORE_MQTT,
                        extra_conf=bridge_conf(proxy.port, keepalive="2s"), **STORE_OPTIONS)
        wait_for(lambda: log_has(b, 'bridge "cloud" connected to'), 10, what="bridge link up")
        first = publish_many(b.port, "up/a%d", 50)
        remote_sub.wait_count(50, timeout=10)
        os.kill(remote.pid, signal.SIGSTOP)
        try:
            second = publish_many(b.port, "up/b%d", 50)
            assert len(second) == 50, "acknowledged locally once stored"
            proxy.refuse()  # the bridge comes back only once the new remote has its subscriber
        finally:
            remote.kill()
        remote_sub.stop()
        remote.start()
        remote_sub = collect(remote.port, "edge1/#", qos=1)
        proxy.pass_through()
        got = remote_sub.wait_count(50, timeout=30)
        remote_sub.expect_no_more(50, 0.5)
        topics = set(m.topic for m in remote_sub.messages)
        assert topics == set("edge1/up/b%d" % i for i in range(50)), \
            "the unacknowledged ones are resent, the acknowledged ones are not"
        assert len(first) == 50
    remote_sub.stop()


SLOW_LOOKUP_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
/* getaddrinfo that takes 3 s for host names ending in ".slow" (then answers 127.0.0.1), as
   a DNS server that is slow to answer would; every other lookup is the real one. */
typedef int (*gai_fn)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res) {
  gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  size_t n = node ? strlen(node) : 0;
  int numeric_only = hints && (hints->ai_flags & AI_NUMERICHOST);
  if (!numeric_only && n > 5 && strcmp(node + n - 5, ".slow") == 0) {
    sleep(3);
    node = "127.0.0.1";
  }
  return real(node, service, hints, res);
}
"""


def test_slow_host_name_lookup_does_not_stall_the_shard(make_broker, remote, tmp_path):
    """The bridge's host name is looked up off the shard: with one shard and a lookup that
    takes 3 s, clients are served meanwhile (before the fix the shard waited in getaddrinfo),
    and the bridge comes up once the answer is there."""
    src = tmp_path / "slow_lookup.c"
    src.write_text(SLOW_LOOKUP_SHIM)
    lib = tmp_path / "slow_lookup.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"],
                   check=True)
    remote_sub = collect(remote.port, "edge1/#", qos=1)
    conf = bridge_conf(remote.port).replace("127.0.0.1:%d" % remote.port,
                                            "remote.slow:%d" % remote.port)
    b = make_broker(extra_conf=conf + "system { num_taskq_thread = 1 }\n",
                    command_prefix=["env", "LD_PRELOAD=%s" % lib])
    t0 = time.monotonic()
    c = mqttraw.RawClient(b.host, b.port, 4)
    assert c.connect(unique_id("c")).reason == 0
    assert c.subscribe([("local/#", 1)]) == [1]
    c.publish("local/x", b"served", qos=1)
    assert c.publishes(1)[0].payload == b"served"
    assert time.monotonic() - t0 < 2.0, "the shard waited for the bridge's host name lookup"
    assert not log_has(b, 'bridge "cloud" connected to')
    wait_for(lambda: log_has(b, 'bridge "cloud" connected to remote.slow'), 15,
             what="the bridge up once the lookup answered")
    assert len(publish_many(b.port, "up/s%d", 5)) == 5
    assert [m.payload for m in remote_sub.wait_count(5, timeout=10)] == \
        [b"m%05d" % i for i in range(5)]
    c.close()
    remote_sub.stop()
