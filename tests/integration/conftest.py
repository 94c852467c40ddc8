"""Integration test fixtures and markers. The broker process itself is
broker_harness.Broker (one class for every test, HarborMQ or Mosquitto).

Target selection (env HARBOR_TEST_TARGET):
  harbormq  (default)  $HARBORMQ_BIN start --conf FILE   (HOCON, NanoMQ keys)
  mosquitto            /usr/sbin/mosquitto -c FILE      (reference, proves the tests)

Fixtures: make_broker(**settings), broker, persist_broker(**settings), open_client,
paho_client, target.

Markers:
  harbormq_only            skipped when the target is mosquitto
  xfail_mosquitto(reason)  expected to fail only against mosquitto (a Mosquitto deviation
                           from the spec, named in reason)
"""

import os

import pytest

import mqttraw
from broker_harness import DEFAULT_MQTT, STORE_MQTT, STORE_OPTIONS, Broker
from helpers import TARGET, is_mosquitto


def pytest_configure(config):
    config.addinivalue_line("markers", "harbormq_only: HarborMQ behaviour Mosquitto lacks")
    config.addinivalue_line(
        "markers", "xfail_mosquitto(reason): Mosquitto deviates from the spec here")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (is_mosquitto() and item.get_closest_marker("harbormq_only")
                and not os.environ.get("HARBOR_RUN_HARBORMQ_ONLY")):
            item.add_marker(pytest.mark.skip(reason="harbormq_only (target is mosquitto)"))
        m = item.get_closest_marker("xfail_mosquitto")
        if is_mosquitto() and m is not None:
            reason = m.kwargs.get("reason") or (m.args[0] if m.args else "mosquitto deviation")
            item.add_marker(pytest.mark.xfail(reason="mosquitto: " + reason, strict=False))


# The keywords of Broker(); every other make_broker setting is an mqtt {} key.
BROKER_KEYWORDS = ("persistence", "data_dir", "extra_conf", "extra_args", "command_prefix",
                   "port", "conf_path", "start_timeout", "stop_timeout")


@pytest.fixture
def target():
    return TARGET


@pytest.fixture
def make_broker(tmp_path):
    """Factory: make_broker(**settings) -> started broker_harness.Broker. Settings are
    NanoMQ mqtt {} keys, written on top of mqtt_defaults (DEFAULT_MQTT unless given), and
    the Broker keywords: persistence=True, data_dir=DIR, extra_conf="raw HOCON",
    extra_args=[...], command_prefix=[...], port=N, conf_path=FILE (an existing config
    file, used as is), start_timeout=S, stop_timeout=S. start=False returns it unstarted.
    Teardown stops every broker still running (SIGTERM, exit 0) and fails the test for one
    that exited on its own."""
    brokers = []

    def factory(start=True, mqtt_defaults=DEFAULT_MQTT, **settings):
        options = {k: settings.pop(k) for k in BROKER_KEYWORDS if k in settings}
        mqtt = dict(mqtt_defaults)
        mqtt.update(settings)
        b = Broker(tmp_path / ("broker%d" % len(brokers)), mqtt, **options)
        brokers.append(b)
        return b.start() if start else b

    yield factory
    problems = []
    for b in brokers:
        if b.proc is None:
            continue
        if b.proc.poll() is not None:
            problems.append("broker pid %d exited unexpectedly with %d; log:\n%s" % (
                b.pid, b.proc.returncode, b.log_tail()))
            b.proc = None
            continue
        try:
            b.stop()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def broker(make_broker):
    return make_broker()


@pytest.fixture
def persist_broker(make_broker):
    """Factory for the SQLite persistence tests: persist_broker(start=True, data_dir=None,
    extra_conf="", ...) -> make_broker with the store on, only the STORE_MQTT keys and the
    STORE_OPTIONS deadlines (15 s to start, 20 s to stop)."""

    def factory(**settings):
        return make_broker(mqtt_defaults=STORE_MQTT, **dict(STORE_OPTIONS, **settings))

    return factory


@pytest.fixture
def open_client():
    """Factory: open_client(broker, version=4, client_id=..., connect=True, **connect_kw)
    -> mqttraw.RawClient. With connect=True the CONNACK must be a success. All clients are
    closed at teardown."""
    made = []
    counter = [0]

    def factory(broker, version=4, client_id=None, connect=True, **kw):
        c = mqttraw.RawClient(broker.host, broker.port, version)
        made.append(c)
        if connect:
            if client_id is None:
                counter[0] += 1
                client_id = "c%d-%d" % (os.getpid(), counter[0])
            ack = c.connect(client_id, **kw)
            assert ack.reason == 0, "CONNACK reason %#x" % ack.reason
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def paho_client():
    """Factory: paho_client(broker, version=4, **kw) -> helpers.PahoClient, closed at teardown."""
    from helpers import PahoClient
    made = []

    def factory(broker, version=4, **kw):
        c = PahoClient(broker, version, **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()
