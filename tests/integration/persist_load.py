"""Load publishers, collectors and delivery checks for the persistence tests
(test_persistence.py, test_full_disk.py). The broker they run against is
broker_harness.Broker (fixture persist_broker); this module starts no process.
"""

import struct
import threading
import time

import paho.mqtt.client as paho

import mqttraw
from helpers import unique_id


def deadline_after(seconds):
    return time.monotonic() + seconds


# ---------------------------------------------------------------- paho publishers

class _AckClient(paho.Client):
    """paho 1.6 client that also records the reason code of each PUBACK / PUBREC
    (paho 1.6 calls on_publish even for a failure reason code in MQTT 5)."""

    def _reason_of(self):
        pkt = self._in_packet['packet']
        mid, = struct.unpack("!H", pkt[:2])
        reason = pkt[2] if (self._protocol == paho.MQTTv5 and len(pkt) > 2) else 0
        return mid, reason

    def _handle_pubackcomp(self, cmd):
        mid, reason = self._reason_of()
        if reason >= 0x80:
            self.refused_mids[mid] = reason
        return super()._handle_pubackcomp(cmd)

    def _handle_pubrec(self):
        mid, reason = self._reason_of()
        if reason >= 0x80:
            self.refused_mids[mid] = reason
        return super()._handle_pubrec()


class LoadPublisher:
    """A paho client on its own thread publishing `<prefix>/<n>` with payload
    b"<n>:<seq>:" + padding, QoS q, as fast as the window allows (at most `window`
    unacknowledged). acked_seqs() = sequence numbers whose on_publish fired without a
    failure reason code (QoS 1: PUBACK, QoS 2: PUBCOMP)."""

    def __init__(self, broker, index, qos, version, prefix="load", window=100,
                 max_messages=30000, pad=0):
        self.index = index
        self.qos = qos
        self.topic = "%s/%d" % (prefix, index)
        self.max_messages = max_messages
        self.pad = b"x" * pad
        self.lock = threading.Lock()
        self.mid_to_seq = {}
        self.published_mids = set()
        self.sent = 0
        self.slots = threading.Semaphore(window)
        self.stop_flag = threading.Event()
        self.error = None
        proto = paho.MQTTv5 if version == 5 else paho.MQTTv311
        cid = unique_id("pub%d" % index)
        if version == 5:
            self.c = _AckClient(cid, protocol=proto)
        else:
            self.c = _AckClient(cid, clean_session=True, protocol=proto)
        self.c.refused_mids = {}
        self.c.max_inflight_messages_set(window)
        self.c.on_publish = self._on_publish
        self.connected = threading.Event()
        self.c.on_connect = lambda *a, **k: self.connected.set()
        self.c.connect(broker.host, broker.port, 60)
        self.c.loop_start()
        assert self.connected.wait(10), "publisher %d got no CONNACK" % index
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, client, userdata, mid):
        with self.lock:
            self.published_mids.add(mid)
        self.slots.release()

    def start(self):
        self.thread.start()

    def _run(self):
        try:
            for seq in range(self.max_messages):
                while not self.slots.acquire(timeout=0.1):
                    if self.stop_flag.is_set():
                        return
                if self.stop_flag.is_set():
                    return
                payload = b"%d:%d:" % (self.index, seq) + self.pad
                # paho calls on_publish with its own mutex held, so never call publish()
                # under self.lock; an ack may be recorded before its mid is mapped here.
                info = self.c.publish(self.topic, payload, self.qos)
                with self.lock:
                    self.mid_to_seq[info.mid] = seq
                    self.sent = seq + 1
                if info.rc != paho.MQTT_ERR_SUCCESS and info.rc != paho.MQTT_ERR_NO_CONN:
                    self.error = "publish rc %d" % info.rc
                    return
        except Exception as e:  # reported by the test
            self.error = repr(e)

    def acked_count(self):
        with self.lock:
            return len(self.published_mids)

    def acked_seqs(self):
        with self.lock:
            return {self.mid_to_seq[m] for m in self.published_mids
                    if m in self.mid_to_seq and m not in self.c.refused_mids}

    def refused_count(self):
        return len(self.c.refused_mids)

    def halt(self):
        """Stop publishing and the network loop (no reconnect to a restarted broker)."""
        self.stop_flag.set()
        self.thread.join(10)
        try:
            self.c.disconnect()  # also stops paho's automatic reconnect
        except Exception:
            pass
        self.c.loop_stop()
        self.c.on_publish = None


def run_load(broker, n_publishers, qos, version, duration=1.5, max_acked=20000,
             prefix="load", end="kill9"):
    """Start publishers, wait until `duration` has passed or `max_acked` acknowledgements,
    then end the broker while they are still publishing (end="kill9" or "sigterm").
    Returns (publishers, exit code of the broker or None for kill -9)."""
    pubs = [LoadPublisher(broker, i, qos, version, prefix=prefix) for i in range(n_publishers)]
    for p in pubs:
        p.start()
    deadline = deadline_after(duration)
    while time.monotonic() < deadline:
        if sum(p.acked_count() for p in pubs) >= max_acked:
            break
        if any(p.error for p in pubs):
            break
        time.sleep(0.01)
    rc = None
    if end == "kill9":
        broker.kill9()
    else:
        rc = broker.stop(check=False)
    for p in pubs:
        p.halt()
    errors = [(p.index, p.error) for p in pubs if p.error]
    assert not errors, "publisher errors: %r" % errors
    return pubs, rc


# ---------------------------------------------------------------- collecting

def paho_session_client(broker, version, client_id, clean, expiry=3600):
    """A paho subscriber (clean_session / clean_start = clean, MQTT 5 session expiry
    `expiry`) collecting messages on its own thread. Returns helpers.PahoClient."""
    from helpers import PahoClient
    return PahoClient(broker, version, client_id=client_id, clean=clean,
                      session_expiry=expiry if version == 5 else None)


def collect_until(client, want_done, timeout, quiet=0.7):
    """Wait (deadline `timeout`) until want_done(messages) is true, then until no new message
    arrived for `quiet` seconds (to catch late duplicates). Returns the message list."""
    deadline = deadline_after(timeout)
    with client.lock:
        client.lock.wait_for(lambda: want_done(client.messages), timeout)
    last_n, last_change = -1, time.monotonic()
    while time.monotonic() < deadline + quiet:
        with client.lock:
            n = len(client.messages)
        if n != last_n:
            last_n, last_change = n, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
        time.sleep(0.05)
    with client.lock:
        return list(client.messages)


def parse_payload(payload):
    idx, seq, _ = payload.split(b":", 2)
    return int(idx), int(seq)


def check_delivery(pubs, messages, exactly_once):
    """Every acknowledged (index, seq) was delivered; per publisher, first occurrences are in
    increasing seq order; with exactly_once no (index, seq) arrives twice.
    Returns a summary dict with counts."""
    delivered = {}
    order = {p.index: [] for p in pubs}
    dups = []
    for m in messages:
        key = parse_payload(m.payload)
        if key in delivered:
            delivered[key] += 1
            dups.append(key)
        else:
            delivered[key] = 1
            order.setdefault(key[0], []).append(key[1])
    summary = {"acked": 0, "delivered_total": len(messages), "distinct": len(delivered),
               "duplicates": len(dups), "sent": sum(p.sent for p in pubs)}
    problems = []
    for p in pubs:
        acked = p.acked_seqs()
        summary["acked"] += len(acked)
        missing = sorted(s for s in acked if (p.index, s) not in delivered)
        if missing:
            problems.append("publisher %d: %d of %d acknowledged messages lost, first %r" % (
                p.index, len(missing), len(acked), missing[:10]))
        seqs = order.get(p.index, [])
        bad = [(a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
        if bad:
            problems.append("publisher %d: out of order (first occurrences), e.g. %r" % (
                p.index, bad[:5]))
        unknown = [s for s in seqs if s >= p.sent]
        if unknown:
            problems.append("publisher %d: delivered seqs never sent: %r" % (
                p.index, unknown[:5]))
    if exactly_once and dups:
        problems.append("QoS 2: %d duplicate deliveries, e.g. %r" % (len(dups), dups[:10]))
    assert not problems, "\n".join(problems) + "\nsummary: %r" % summary
    return summary


def raw_client(broker, version=4):
    return mqttraw.RawClient(broker.host, broker.port, version)


def session_props(version, expiry=3600):
    return {mqttraw.P_SESSION_EXPIRY: expiry} if version == 5 else None

