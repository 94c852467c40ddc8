"""Integration test harness: starts a real broker process on a free 127.0.0.1 port.

Target selection (env HARBOR_TEST_TARGET):
  harbormq  (default)  $HARBORMQ_BIN start --conf FILE   (HOCON, NanoMQ keys)
  mosquitto            /usr/sbin/mosquitto -c FILE      (reference, proves the tests)

Markers:
  harbormq_only            skipped when the target is mosquitto
  xfail_mosquitto(reason)  expected to fail only against mosquitto (a Mosquitto deviation
                           from the spec, named in reason)
"""

import os
import signal
import subprocess

import pytest

import mqttraw
from helpers import HOST, TARGET, free_port, is_mosquitto, read_log, wait_for_listener

HERE = os.path.dirname(os.path.abspath(__file__))
HARBORMQ_BIN = os.environ.get(
    "HARBORMQ_BIN", os.path.normpath(os.path.join(HERE, "..", "..", "build", "harbormq")))
SHARED_DIR = os.environ.get(
    "HARBOR_SHARED_DIR", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared")))
MOSQUITTO_BIN = "/usr/sbin/mosquitto"

# Broker settings every test gets unless it overrides them (NanoMQ mqtt {} keys).
DEFAULT_MQTT = {
    "max_inflight_window": 20,
    "max_mqueue_len": 1000,
    "retry_interval": "2s",
    "keepalive_multiplier": 1.25,
    "max_packet_size": "1MB",
    "max_topic_alias": 10,
}


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


def _size_bytes(v):
    if isinstance(v, int):
        return v
    s = str(v).strip().upper()
    for suffix, mult in (("KB", 1024), ("MB", 1024 * 1024), ("GB", 1024 ** 3), ("B", 1)):
        if s.endswith(suffix):
            return int(s[:-len(suffix)]) * mult
    return int(s)


def _hocon_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Broker:
    """One broker process. Created by the make_broker fixture."""

    def __init__(self, tmp_dir, settings):
        self.host = HOST
        self.port = settings.pop("port", None) or free_port()
        self.tmp_dir = tmp_dir
        self.data_dir = os.path.join(tmp_dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.persistence = settings.pop("persistence", False)
        self.extra_conf = settings.pop("extra_conf", "")
        self.extra_args = settings.pop("extra_args", [])
        given_conf = settings.pop("conf_path", None)
        self.mqtt = dict(DEFAULT_MQTT)
        self.mqtt.update(settings)
        self.proc = None
        self.pid = None
        self.starts = 0
        self.log_path = os.path.join(tmp_dir, "broker.log")
        self.pid_path = os.path.join(tmp_dir, "harbormq.pid")
        self.conf_path = given_conf or self._write_config()

    # -- config

    def _write_config(self):
        if is_mosquitto():
            path = os.path.join(self.tmp_dir, "mosquitto.conf")
            lines = [
                "per_listener_settings false",
                "allow_anonymous true",
                "user root",
                "log_dest stderr",
                "log_type all",
                "max_inflight_messages %d" % int(self.mqtt["max_inflight_window"]),
                "max_queued_messages %d" % int(self.mqtt["max_mqueue_len"]),
                "max_packet_size %d" % _size_bytes(self.mqtt["max_packet_size"]),
            ]
            if self.persistence:
                lines += ["persistence true", "persistence_location %s/" % self.data_dir,
                          "autosave_interval 1"]
            else:
                lines += ["persistence false"]
            lines += ["listener %d %s" % (self.port, HOST),
                      "max_topic_alias %d" % int(self.mqtt["max_topic_alias"])]
            text = "\n".join(lines) + "\n"
        else:
            path = os.path.join(self.tmp_dir, "harbormq.conf")
            mqtt = ",\n  ".join("%s = %s" % (k, _hocon_value(v)) for k, v in self.mqtt.items())
            text = ('listeners.tcp { bind = "%s:%d" }\n' % (HOST, self.port) +
                    "system { num_taskq_thread = 2 }\n" +
                    "mqtt {\n  %s\n}\n" % mqtt)
            if self.persistence:
                text += 'sqlite {\n  mounted_file_path = "%s/"\n}\n' % self.data_dir
            text += self.extra_conf
        with open(path, "w") as f:
            f.write(text)
        return path

    def command(self):
        if is_mosquitto():
            return [MOSQUITTO_BIN, "-c", self.conf_path]
        # Each broker has its own pid file: a second broker on one pid file refuses to start.
        return [HARBORMQ_BIN, "start", "--conf", self.conf_path,
                "--pid-file", self.pid_path] + list(self.extra_args)

    # -- process control

    def start(self, timeout=10.0):
        if not is_mosquitto() and not os.access(HARBORMQ_BIN, os.X_OK):
            pytest.fail("harbormq binary not found or not executable: %s "
                        "(set HARBORMQ_BIN or HARBOR_TEST_TARGET=mosquitto)" % HARBORMQ_BIN)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(b"\n===== start #%d: %s\n" % (self.starts, " ".join(self.command()).encode()))
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp_dir)
        log.close()
        self.pid = self.proc.pid
        wait_for_listener(self.proc, self.host, self.port, timeout, self.log_tail,
                          self._kill_quietly)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0, check=True):
        """SIGTERM, wait up to timeout, assert exit code 0. Returns the exit code."""
        assert self.proc is not None, "broker not started"
        rc = self.proc.poll()
        if rc is not None:
            self.proc = None
            if check:
                raise AssertionError("broker had already exited with %d; log:\n%s" % (
                    rc, self.log_tail()))
            return rc
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_quietly()
            raise AssertionError("broker did not exit within %.0fs of SIGTERM; log:\n%s" % (
                timeout, self.log_tail()))
        self.proc = None
        if check:
            assert rc == 0, "broker exit code %d after SIGTERM; log:\n%s" % (rc, self.log_tail())
        return rc

    def kill9(self):
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def restart(self):
        """Stop (SIGTERM, exit 0) and start again on the same port and data dir."""
        if self.proc is not None:
            self.stop()
        return self.start()

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.proc = None

    def log_text(self):
        return read_log(self.log_path)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


@pytest.fixture
def target():
    return TARGET


@pytest.fixture
def make_broker(tmp_path):
    """Factory: make_broker(**mqtt_settings) -> started Broker. Settings are NanoMQ mqtt {}
    keys plus: persistence=True, extra_conf="raw HOCON", extra_args=[...], port=N,
    conf_path=FILE (use an existing config file as is)."""
    brokers = []

    def factory(**settings):
        d = tmp_path / ("broker%d" % len(brokers))
        d.mkdir()
        b = Broker(str(d), dict(settings))
        brokers.append(b)
        return b.start()

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
