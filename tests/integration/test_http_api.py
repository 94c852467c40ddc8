"""The management HTTP API (http_server {}, docs/http-api.md): NanoMQ's /api/v4 routes and
JSON shapes against a real broker, Basic authentication, 400/401/404, a paho client seen in
/clients, counters that move after publishes, and the Prometheus text read by
prometheus_client's parser."""

import base64
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

import paho.mqtt.client as paho
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import PahoClient, free_port, unique_id, wait_for

pytestmark = pytest.mark.harbormq_only

USER, PASSWORD = "admin", "s3cret"


def api_broker(make_broker, credentials=True):
    port = free_port()
    keys = "port = %d" % port
    if credentials:
        keys += ', username = "%s", password = "%s"' % (USER, PASSWORD)
    else:
        keys += ', username = "", password = ""'
    b = make_broker(extra_conf="http_server { %s }\n" % keys)
    b.http_port = port
    return b


def get(broker, path, auth=(USER, PASSWORD)):
    """(status, content type, body text) of GET path."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (broker.http_port, path))
    if auth is not None:
        token = base64.b64encode(("%s:%s" % auth).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def get_json(broker, path, status=200, **kw):
    code, ctype, body = get(broker, path, **kw)
    assert code == status, (path, code, body)
    assert ctype.startswith("application/json"), ctype
    return json.loads(body)


def assert_shape(obj, fields):
    """obj has exactly these keys, each of the given type."""
    assert sorted(obj) == sorted(fields), (obj, fields)
    for key, kind in fields.items():
        assert isinstance(obj[key], kind), (key, obj[key], kind)


def test_endpoint_list(make_broker):
    b = api_broker(make_broker)
    body = get_json(b, "/api/v4")
    assert body["code"] == 0
    paths = [e["path"] for e in body["data"]]
    for e in body["data"]:
        assert_shape(e, {"path": str, "name": str, "method": str, "descr": str})
    for p in ("/brokers/", "/nodes/", "/clients/", "/metrics/", "/prometheus/"):
        assert p in paths


def test_brokers_nodes_metrics_shapes(make_broker):
    b = api_broker(make_broker)
    brokers = get_json(b, "/api/v4/brokers")
    assert brokers["code"] == 0 and len(brokers["data"]) == 1
    node = brokers["data"][0]
    assert_shape(node, {"datetime": str, "node_status": str, "sysdescr": str, "uptime": str,
                        "version": str})
    assert node["node_status"] == "Running"
    assert " Hours, " in node["uptime"] and node["uptime"].endswith(" seconds")
    assert len(node["datetime"]) == len("2022-06-07 10:02:24")

    nodes = get_json(b, "/api/v4/nodes")
    assert_shape(nodes["data"][0], {"connections": int, "node_status": str, "uptime": str,
                                    "version": str})
    metrics = get_json(b, "/api/v4/metrics")
    assert_shape(metrics, {"code": int, "metrics": list, "cpuinfo": str, "memory": str,
                           "connections": int})
    assert metrics["cpuinfo"].endswith("%") and int(metrics["memory"]) > 0


def test_clients_lists_a_paho_client_with_nanomq_fields(make_broker):
    b = api_broker(make_broker)
    cid = unique_id("api")
    c = paho.Client(cid, protocol=paho.MQTTv5)
    c.username_pw_set("alice", "x")
    c.connect("127.0.0.1", b.port, 45, clean_start=True)
    c.loop_start()
    try:
        def mine():
            data = get_json(b, "/api/v4/clients")["data"]
            return [x for x in data if x["client_id"] == cid]
        wait_for(lambda: mine(), what="the client in /clients")
        (client,) = mine()
        assert_shape(client, {"client_id": str, "username": str, "keepalive": int,
                              "conn_state": str, "clean_start": bool, "proto_name": str,
                              "proto_ver": int, "connected_at": int})
        assert client["username"] == "alice"
        assert client["keepalive"] == 45
        assert client["conn_state"] == "connected"
        assert client["clean_start"] is True
        assert client["proto_name"] == "MQTT" and client["proto_ver"] == 5

        one = get_json(b, "/api/v4/clients?clientid=" + cid)
        assert [x["client_id"] for x in one["data"]] == [cid]
        assert get_json(b, "/api/v4/clients?username=nobody")["data"] == []
        assert get_json(b, "/api/v4/clients?proto_ver=4&client_id=" + cid)["data"] == []
        paged = get_json(b, "/api/v4/clients?_page=1&_limit=1")
        assert len(paged["data"]) == 1 and paged["meta"]["limit"] == 1
        nodes = get_json(b, "/api/v4/nodes")
        assert nodes["data"][0]["connections"] >= 1
    finally:
        c.disconnect()
        c.loop_stop()


def test_bad_parameters_are_400(make_broker):
    b = api_broker(make_broker)
    for q in ("_limit=0", "_page=abc", "conn_state=maybe", "proto_ver=9", "nosuch=1"):
        body = get_json(b, "/api/v4/clients?" + q, status=400)
        assert body["code"] == 108 and body["message"], body


def test_unknown_route_is_404(make_broker):
    b = api_broker(make_broker)
    body = get_json(b, "/api/v4/nosuch", status=404)
    assert body["code"] == 102


def test_credentials(make_broker):
    b = api_broker(make_broker)
    missing = get_json(b, "/api/v4/brokers", status=401, auth=None)
    assert missing == {"code": 104}
    wrong = get_json(b, "/api/v4/brokers", status=401, auth=(USER, "wrong"))
    assert wrong == {"code": 103}
    assert get_json(b, "/api/v4/nosuch", status=401, auth=None)["code"] == 104
    code, _, _ = get(b, "/metrics", auth=None)
    assert code == 401


def test_no_credentials_configured_means_open(make_broker):
    b = api_broker(make_broker, credentials=False)
    assert get_json(b, "/api/v4/brokers", auth=None)["code"] == 0


def scrape(b, path="/api/v4/prometheus"):
    code, ctype, text = get(b, path)
    assert code == 200 and ctype.startswith("text/plain"), (code, ctype)
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            # The parser names a counter's sample <family>_total whether the text did or not.
            name = s.name[:-len("_total")] if s.name.endswith("_total") else s.name
            key = name + ("" if not s.labels else str(sorted(s.labels.items())))
            samples[key] = s.value
    return samples


def test_prometheus_counters_move_after_publishes(make_broker):
    b = api_broker(make_broker)
    before = scrape(b)
    for name in ("nanomq_connections_count", "nanomq_sessions_count",
                 "nanomq_messages_received", "nanomq_messages_sent", "nanomq_messages_dropped",
                 "harbormq_retained_messages"):
        assert name in before, name
    sub = PahoClient(b)
    pub = PahoClient(b)
    try:
        sub.subscribe("api/t", qos=1)
        for i in range(5):
            pub.publish("api/t", b"m%d" % i, qos=1)
        pub.publish("api/retained", b"r", qos=1, retain=True)
        sub.expect(5)
        wait_for(lambda: scrape(b)["nanomq_messages_received"]
                 >= before["nanomq_messages_received"] + 6, what="messages in counted")
        after = scrape(b, "/metrics")
        assert after["nanomq_messages_sent"] >= before["nanomq_messages_sent"] + 5
        assert after["nanomq_connections_count"] >= 2
        assert after["harbormq_retained_messages"] >= 1
        assert after["nanomq_subscribers_count"] >= 1
    finally:
        sub.close()
        pub.close()


def start_fails(conf_path):
    """stderr of `harbormq start` on conf_path, which must fail."""
    r = subprocess.run([os.environ.get("HARBORMQ_BIN", "../../build/harbormq"), "start",
                        "--conf", conf_path], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0, r.stderr
    return r.stderr


def test_jwt_is_refused_naming_file_line_and_key(make_broker):
    b = make_broker(start=False, extra_conf="http_server {\n  auth_type = jwt\n}\n")
    err = start_fails(b.conf_path)
    assert "http_server.auth_type" in err and "jwt is not implemented" in err, err
    assert b.conf_path + ":" in err, err


def test_port_in_use_names_the_key(make_broker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        b = make_broker(start=False,
                        extra_conf="http_server { port = %d }\n" % s.getsockname()[1])
        assert "http_server.port" in start_fails(b.conf_path)


def test_post_to_a_get_route_is_404(make_broker):
    b = api_broker(make_broker)
    token = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    req = urllib.request.Request("http://127.0.0.1:%d/api/v4/clients" % b.http_port,
                                 data=b"{}", method="POST",
                                 headers={"Authorization": "Basic " + token})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 404
    assert json.loads(e.value.read())["code"] == 102
