"""MQTT 5 topic aliases the broker assigns to outbound PUBLISH (issue 11): only when the
client's Topic Alias Maximum allows it [MQTT-3.3.2-9], [MQTT-3.3.2-10]; the first PUBLISH of
a topic carries the topic and the alias, later ones the alias alone [MQTT-3.3.2-12]; aliases
are per connection; once every alias is taken, new topics go out in full (no replacement).
Checked on the wire with the raw client: Debian's paho-mqtt 1.6 does not resolve aliases a
server sends, and libmosquitto 2.0.11 refuses a PUBLISH with an empty topic, so neither can
receive them (both only ask for aliases when told to: Topic Alias Maximum is 0 by default)."""

import pytest

import mqttraw as m
from helpers import unique_id

pytestmark = pytest.mark.harbormq_only  # Mosquitto 2.0.11 sends no aliases of its own


def aliases_of(publishes):
    return [(p.topic, p.props.get(m.P_TOPIC_ALIAS), p.payload) for p in publishes]


def test_no_alias_without_a_topic_alias_maximum(broker, open_client):
    sub = open_client(broker, 5)
    sub.subscribe([("al/none", 1)])
    pub = open_client(broker, 5)
    for i in range(3):
        pub.publish("al/none", b"%d" % i, qos=1)
    got = sub.publishes(3)
    assert all(p.topic == "al/none" and m.P_TOPIC_ALIAS not in p.props for p in got), got


def test_first_publish_sets_the_alias_later_ones_use_it_alone(broker, open_client):
    sub = open_client(broker, 5, props={m.P_TOPIC_ALIAS_MAXIMUM: 2})
    sub.subscribe([("al/#", 1)])
    pub = open_client(broker, 5)
    for topic, payload in [("al/a", b"1"), ("al/a", b"2"), ("al/b", b"3"), ("al/c", b"4"),
                           ("al/b", b"5"), ("al/c", b"6"), ("al/a", b"7")]:
        pub.publish(topic, payload, qos=1)
    got = aliases_of(sub.publishes(7))
    assert got == [
        ("al/a", 1, b"1"),  # topic and alias: sets it up
        ("", 1, b"2"),      # the alias alone
        ("al/b", 2, b"3"),
        ("al/c", None, b"4"),  # both aliases taken (the client allows 2): in full, no alias
        ("", 2, b"5"),
        ("al/c", None, b"6"),
        ("", 1, b"7"),
    ], got


def test_aliases_start_again_on_a_new_connection(broker, open_client):
    cid = unique_id("alias")
    sub = open_client(broker, 5, client_id=cid, clean=False,
                      props={m.P_TOPIC_ALIAS_MAXIMUM: 5, m.P_SESSION_EXPIRY: 60})
    sub.subscribe([("al/re", 1)])
    pub = open_client(broker, 5)
    pub.publish("al/re", b"1", qos=1)
    pub.publish("al/re", b"2", qos=1)
    assert aliases_of(sub.publishes(2)) == [("al/re", 1, b"1"), ("", 1, b"2")]
    sub.close()
    again = open_client(broker, 5, client_id=cid, clean=False,
                        props={m.P_TOPIC_ALIAS_MAXIMUM: 5, m.P_SESSION_EXPIRY: 60})
    pub.publish("al/re", b"3", qos=1)
    assert aliases_of(again.publishes(1)) == [("al/re", 1, b"3")]  # set up again, in full
