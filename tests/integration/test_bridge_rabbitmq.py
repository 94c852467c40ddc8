"""Scale-out (issue 13): an edge HarborMQ bridged into a two-node RabbitMQ cluster
(rabbitmq_mqtt, 3.10: MQTT 3.1.1 only), both nodes listed in the bridge (`server` = node 1,
`hybrid_servers` = [node 2]). Node 1 is stopped while the edge's publishers keep sending;
the bridge must move to node 2 and every message acknowledged to a local publisher must
reach a subscriber on node 2 (QoS 1: duplicates allowed, nothing missing).

docs/scale-out.md describes the set-up; this file is its worked example."""

import threading
import time

import paho.mqtt.client as paho
import pytest

from broker_harness import STORE_MQTT, STORE_OPTIONS
from helpers import HOST, read_log, unique_id, wait_for
from remote_mosquitto import collect
from remote_rabbitmq import RabbitCluster

pytestmark = pytest.mark.harbormq_only

BRIDGE = "rmq"


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory):
    with RabbitCluster(tmp_path_factory.mktemp("rabbit"), nodes=2) as cluster:
        yield cluster


@pytest.fixture
def cluster(rabbit_cluster):
    """The module's cluster with every node running (a node an earlier test stopped is
    started again first)."""
    for i in range(len(rabbit_cluster.nodes)):
        if not rabbit_cluster.running(i):
            rabbit_cluster.start_node(i)
    return rabbit_cluster


def edge_conf(cluster, clientid, keepalive="5s"):
    return """
bridges.mqtt.%s {
  server = "mqtt-tcp://127.0.0.1:%d"
  hybrid_servers = ["mqtt-tcp://127.0.0.1:%d"]
  proto_ver = 4
  clientid = "%s"
  keepalive = %s
  clean_start = false
  backoff_max = 2s
  forwards = [
    { local_topic = "up/#", prefix = "edge1/", qos = 1 }
  ]
}
bridges.mqtt.cache { disk_cache_size = 100000 }
""" % (BRIDGE, cluster.mqtt_port(0), cluster.mqtt_port(1), clientid, keepalive)


def log_has(broker, text):
    return text in read_log(broker.log_path)


class PacedPublisher(threading.Thread):
    """Publishes `n` QoS 1 messages (topic up/r<i>, payload m<i>) to the local broker in
    sets of `batch`, waiting for each set's PUBACKs before the next, `pause` s apart.
    Message i is published only once gates[i] (an Event), if there is one, is set.
    acked: the payloads whose PUBACK came back, in order."""

    def __init__(self, port, n, batch=10, pause=0.1, gates=None):
        super().__init__(daemon=True)
        self.port, self.n, self.batch, self.pause = port, n, batch, pause
        self.gates = gates or {}
        self.acked = []
        self.error = None
        self.done = threading.Event()

    def run(self):
        c = paho.Client(unique_id("edge-pub"), protocol=paho.MQTTv311)
        c.max_inflight_messages_set(self.batch)
        c.max_queued_messages_set(0)
        try:
            c.connect(HOST, self.port, 30)
            c.loop_start()
            for start in range(0, self.n, self.batch):
                infos = []
                for i in range(start, min(start + self.batch, self.n)):
                    gate = self.gates.get(i)
                    if gate is not None and not gate.wait(60):
                        raise AssertionError("publisher: gate before message %d not opened" % i)
                    payload = b"m%05d" % i
                    infos.append((payload, c.publish("up/r%d" % i, payload, 1)))
                for payload, info in infos:
                    info.wait_for_publish(10)
                    if info.is_published():
                        self.acked.append(payload)
                time.sleep(self.pause)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            try:
                c.disconnect()
            finally:
                c.loop_stop()
            self.done.set()


def test_edge_bridge_fails_over_to_the_next_cluster_node(make_broker, cluster):
    n = 300
    node1, node2 = cluster.mqtt_port(0), cluster.mqtt_port(1)
    # The subscriber is on node 2, the node that stays up; a persistent session (QoS 1).
    sub = collect(node2, "edge1/#", qos=1, client_id=unique_id("rmq-sub"), clean=False)
    b = make_broker(mqtt_defaults=STORE_MQTT,
                    extra_conf=edge_conf(cluster, unique_id("edge1")), **STORE_OPTIONS)
    on_node1 = 'bridge "%s" connected to 127.0.0.1:%d' % (BRIDGE, node1)
    on_node2 = 'bridge "%s" connected to 127.0.0.1:%d' % (BRIDGE, node2)
    lost_node1 = 'bridge "%s": link to 127.0.0.1:%d lost' % (BRIDGE, node1)
    wait_for(lambda: log_has(b, on_node1), 15, what="bridge link to node 1")

    # Three phases, about 100 messages/s: 0-199 from while the link to node 1 is up (node
    # 1 is stopped once 100 have arrived, so the next ones meet its shutdown), 200-249 only
    # after the bridge saw the link to node 1 lost (queued on the edge's disk), 250-299
    # only after it is on node 2.
    link_lost, moved = threading.Event(), threading.Event()
    pub = PacedPublisher(b.port, n, gates={200: link_lost, 250: moved})
    t0 = time.monotonic()
    pub.start()
    try:
        wait_for(lambda: sub.count() >= 100, 30, what="100 messages at the node 2 subscriber")
        t_stop = time.monotonic()
        cluster.stop_node(0)
        wait_for(lambda: log_has(b, lost_node1), 15, what="bridge link to node 1 lost")
        link_lost.set()
        wait_for(lambda: log_has(b, on_node2), 30, what="bridge connected to node 2")
        t_moved = time.monotonic()
        moved.set()
        assert pub.done.wait(60), "publisher did not finish"
    finally:
        link_lost.set()
        moved.set()
    assert pub.error is None, "publisher: %r" % (pub.error,)
    acked = pub.acked
    assert len(acked) == n, "the edge acknowledges every message (%d/%d)" % (len(acked), n)

    # Every acknowledged message at the subscriber on node 2 (QoS 1: duplicates allowed).
    def all_in():
        return set(acked) <= set(sub.payloads())
    try:
        wait_for(all_in, 30, interval=0.1, what="every acknowledged message on node 2")
    except AssertionError:
        missing = sorted(set(acked) - set(sub.payloads()))
        raise AssertionError("%d acknowledged message(s) missing on node 2, first %r; "
                             "bridge log:\n%s" % (len(missing), missing[:10], b.log_tail(30)))
    got = sub.messages
    assert {m.topic for m in got} == {"edge1/up/r%d" % i for i in range(n)}, \
        "RabbitMQ delivers the MQTT topic with '/' (routing key edge1.up.rN inside)"
    assert all(m.qos == 1 for m in got)
    # The bridge moved: one link up on each node, node 1's lost in between.
    text = b.log_text()
    assert text.index(on_node1) < text.index(lost_node1) < text.index(on_node2)
    firsts = list(dict.fromkeys(m.payload for m in got))
    print("scale-out: %d messages, %d duplicate(s), first copies in order: %s, bridge on "
          "node 2 %.1f s after stop_node began, all in %.1f s after the first publish" % (
              n, len(got) - len(firsts), firsts == acked, t_moved - t_stop,
              time.monotonic() - t0))
    sub.stop()
