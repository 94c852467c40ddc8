"""Conformance defects of issue 10, each named by its spec clause."""

import pytest

import mqttraw as m
from helpers import both_versions


@pytest.mark.parametrize("client_id,accepted", [
    ("", False), ("x" * 23, True),
    pytest.param("x" * 24, False, marks=pytest.mark.xfail_mosquitto(
        reason="2.0.11 accepts a 24-character 3.1 client id")),
])
def test_mqtt31_client_id_is_1_to_23_characters(broker, open_client, client_id, accepted):
    """MQTT 3.1 (protocol level 3), CONNECT payload: the Client Identifier is 1 to 23
    characters; otherwise CONNACK 0x02 (identifier rejected) and the connection closes."""
    c = open_client(broker, 3, connect=False)
    c.send(m.connect_packet(client_id, 3, clean=True))
    ack = c.wait_for(m.CONNACK)
    if accepted:
        assert ack.reason == 0
        assert c.ping()
    else:
        assert ack.reason == 0x02, ack
        c.wait_closed()


@both_versions
@pytest.mark.parametrize("packet", ["subscribe", "unsubscribe"])
def test_mqtt_4_7_3_1_empty_topic_filter_closes_the_connection(broker, open_client, version,
                                                               packet):
    """[MQTT-4.7.3-1]: topic filters are at least one character long; an empty one is a
    protocol violation (the connection is closed), not a per-filter SUBACK failure."""
    c = open_client(broker, version)
    if packet == "subscribe":
        c.send(m.subscribe_packet(c.next_pid(), [("", 0)], version))
    else:
        c.send(m.unsubscribe_packet(c.next_pid(), [""], version))
    got = c.wait_closed()
    assert all(p.type not in (m.SUBACK, m.UNSUBACK) for p in got), got


# ---------------------------------------------------------------- MQTT 3.1 rules

def test_mqtt31_pubrel_retry_with_dup_completes_the_qos2_flow(broker, open_client):
    """MQTT 3.1 section 2.1: PUBREL carries QoS 1 and sets DUP when it is resent. A 3.1
    client's PUBREL retry (6a 02 00 01) gets its PUBCOMP and the message is delivered;
    3.1.1's reserved-flags rule [MQTT-3.6.1-1] [MQTT-2.2.2-2] is not 3.1's."""
    sub = open_client(broker, 4)
    assert sub.subscribe(("c31/dup", 2)) == [2]
    pub = open_client(broker, 3)
    pub.send(m.publish_packet("c31/dup", b"once", qos=2, pid=1, version=3))
    assert pub.wait_for(m.PUBREC, pid=1)
    pub.send(b"\x6a\x02\x00\x01")  # PUBREL, DUP=1 QoS=1
    assert pub.wait_for(m.PUBCOMP, pid=1)
    got = sub.publishes(1)
    assert got[0].topic == "c31/dup" and got[0].payload == b"once"
    assert pub.ping()


def test_mqtt_2_2_2_2_pubrel_with_dup_closes_a_311_connection(broker, open_client):
    """[MQTT-3.6.1-1] [MQTT-2.2.2-2]: in 3.1.1 PUBREL's flags are exactly 0010; the 3.1
    retry bytes close a 3.1.1 connection."""
    pub = open_client(broker, 4)
    pub.send(m.publish_packet("c311/dup", b"x", qos=2, pid=1, version=4))
    assert pub.wait_for(m.PUBREC, pid=1)
    pub.send(b"\x6a\x02\x00\x01")
    got = pub.wait_closed()
    assert all(p.type != m.PUBCOMP for p in got), got


@pytest.mark.parametrize("flags,what", [
    (0x03, "reserved bit 0 set"),
    (0x12, "will QoS 2 without will flag"),
    (0x22, "will retain without will flag"),
])
def test_mqtt31_connect_flags_follow_31_rules(broker, open_client, flags, what):
    """3.1 calls CONNECT flag bit 0 reserved without requiring a value, and reads Will QoS
    and Will Retain only with the Will flag; 3.1.1 requires 0 for each
    ([MQTT-3.1.2-3], [MQTT-3.1.2-13], [MQTT-3.1.2-15]) and closes the connection."""
    def connect(version):
        name = "MQIsdp" if version == 3 else "MQTT"
        body = m.mqtt_str(name) + bytes([version, flags]) + m.u16(60) + m.mqtt_str("flags31")
        return m.packet(m.CONNECT, 0, body)

    c31 = open_client(broker, 3, connect=False)
    c31.send(connect(3))
    assert c31.wait_for(m.CONNACK).reason == 0, what
    assert c31.ping()
    c311 = open_client(broker, 4, connect=False)
    c311.send(connect(4))
    got = c311.wait_closed()
    assert all(p.type != m.CONNACK or p.reason != 0 for p in got), (what, got)


def test_mqtt31_will_at_qos2_connect_flags_0x14(broker, open_client):
    """Connect flags 0x14 (will, will QoS 2, clean session 0) on 3.1: accepted, and the
    will is published at QoS 2 when the connection drops."""
    sub = open_client(broker, 4)
    assert sub.subscribe(("c31/will", 2)) == [2]
    c = open_client(broker, 3, connect=False)
    c.send(m.connect_packet("will31", 3, clean=False,
                            will=dict(topic="c31/will", payload=b"gone", qos=2)))
    assert c.wait_for(m.CONNACK).reason == 0
    c.close()  # no DISCONNECT: the will is published
    got = sub.publishes(1)
    assert got[0].topic == "c31/will" and got[0].payload == b"gone" and got[0].qos == 2


# ---------------------------------------------------------------- CONNACK size

def wire_size(p):
    return 1 + len(m.varint(len(p.raw))) + len(p.raw)


# The smallest CONNACK HarborMQ sends to a v5 client that chose its own client id: flags,
# reason, property length, Receive Maximum (3) and Maximum Packet Size (5).
SMALLEST_V5_CONNACK = 13


def test_mqtt_3_1_2_24_connack_fits_the_clients_maximum_packet_size(broker, open_client):
    """[MQTT-3.1.2-24]: the server does not send a packet larger than the client's Maximum
    Packet Size, CONNACK included: optional properties are left out to fit, and the
    connection is still accepted."""
    full = open_client(broker, 5, client_id="mps-full")
    assert wire_size(full.connack) > SMALLEST_V5_CONNACK, full.connack.props

    c = open_client(broker, 5, connect=False)
    c.send(m.connect_packet("mps-small", 5,
                            props={m.P_MAXIMUM_PACKET_SIZE: SMALLEST_V5_CONNACK}))
    ack = c.wait_for(m.CONNACK)
    assert ack.reason == 0
    assert wire_size(ack) <= SMALLEST_V5_CONNACK, (wire_size(ack), ack.props)
    # What changes the client's behaviour stays.
    assert ack.props[m.P_RECEIVE_MAXIMUM] == full.connack.props[m.P_RECEIVE_MAXIMUM]
    assert ack.props[m.P_MAXIMUM_PACKET_SIZE] == full.connack.props[m.P_MAXIMUM_PACKET_SIZE]
    assert c.ping()


def test_mqtt_3_1_2_24_connack_that_cannot_fit_is_not_sent(broker, open_client):
    """[MQTT-3.1.2-24]: a Maximum Packet Size below the smallest CONNACK: nothing is sent
    and the connection is closed."""
    c = open_client(broker, 5, connect=False)
    c.send(m.connect_packet("mps-tiny", 5,
                            props={m.P_MAXIMUM_PACKET_SIZE: SMALLEST_V5_CONNACK - 1}))
    got = c.wait_closed()
    assert all(wire_size(p) <= SMALLEST_V5_CONNACK - 1 for p in got), got
    assert all(p.type != m.CONNACK for p in got), got


# ---------------------------------------------------------------- mqtt.property_size

def user_properties(n):
    return {m.P_USER_PROPERTY: [("k%d" % i, "v%d" % i) for i in range(n)]}


@pytest.mark.harbormq_only
@pytest.mark.parametrize("limit", [32, 5])
def test_property_size_limits_user_properties_per_packet(make_broker, open_client, limit):
    """mqtt.property_size (NanoMQ key; here: most User Properties in one packet). A v5
    PUBLISH with one more is refused with DISCONNECT 0x83 (Implementation specific error:
    valid, but not processed here) and only that connection closes; one with exactly the
    limit is delivered with all its properties, in order."""
    broker = make_broker() if limit == 32 else make_broker(property_size=limit)
    sub = open_client(broker, 5)
    assert sub.subscribe(("props/#", 1)) == [1]
    pub = open_client(broker, 5)
    ack = pub.publish("props/ok", b"x", qos=1, props=user_properties(limit))
    assert ack.reason in (0, 0x10)
    got = sub.publishes(1)
    assert got[0].props[m.P_USER_PROPERTY] == [("k%d" % i, "v%d" % i) for i in range(limit)]

    pub.send(m.publish_packet("props/over", b"y", qos=1, pid=7, version=5,
                              props=user_properties(limit + 1)))
    closed = pub.wait_closed()
    assert [p.reason for p in closed if p.type == m.DISCONNECT] == [0x83], closed
    assert all(p.type != m.PUBACK for p in closed), closed
    # The other client is unaffected and never sees the refused message.
    assert sub.ping()
    assert all(p.type != m.PUBLISH for p in sub.pending), sub.pending
    other = open_client(broker, 5)
    other.publish("props/after", b"z", qos=1)
    assert sub.publishes(1)[0].topic == "props/after"


@pytest.mark.harbormq_only
@pytest.mark.parametrize("packet", ["subscribe", "unsubscribe", "puback", "disconnect"])
def test_property_size_applies_to_every_packet_with_user_properties(broker, open_client,
                                                                    packet):
    """mqtt.property_size holds for every packet type that carries User Properties."""
    c = open_client(broker, 5)
    props = user_properties(33)
    if packet == "subscribe":
        c.send(m.subscribe_packet(c.next_pid(), [("t", 0)], 5, props))
    elif packet == "unsubscribe":
        c.send(m.unsubscribe_packet(c.next_pid(), ["t"], 5, props))
    elif packet == "puback":
        c.send(m.ack_packet(m.PUBACK, 1, 5, reason=0, props=props))
    else:
        c.send(m.disconnect_packet(5, reason=0, props=props))
    got = c.wait_closed()
    assert [p.reason for p in got if p.type == m.DISCONNECT] == [0x83], got


@pytest.mark.harbormq_only
def test_property_size_refuses_a_connect_beyond_it(broker, open_client):
    """A CONNECT with more User Properties than mqtt.property_size is not accepted."""
    c = open_client(broker, 5, connect=False)
    c.send(m.connect_packet("props-connect", 5, props=user_properties(33)))
    got = c.wait_closed()
    assert all(p.type != m.CONNACK or p.reason >= 0x80 for p in got), got
    ok = open_client(broker, 5, connect=False)
    ok.send(m.connect_packet("props-connect-ok", 5, props=user_properties(32)))
    assert ok.wait_for(m.CONNACK).reason == 0
