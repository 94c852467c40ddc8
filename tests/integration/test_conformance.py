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
