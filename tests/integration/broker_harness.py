"""The integration tests' one broker-process class, `Broker` (issue 11: it replaces
conftest.Broker and persist_harness.PersistBroker, which duplicated each other).

A module of its own rather than part of conftest.py: test files import from it (Broker,
HARBORMQ_BIN, proc_status_kib), and a conftest.py is a pytest plugin file; importing it by
name from a test only works while pytest's default import mode puts its directory on
sys.path. conftest.py keeps the pytest hooks and the fixtures built on Broker.

Target (env HARBOR_TEST_TARGET, see helpers.TARGET):
  harbormq  (default)  $HARBORMQ_BIN start --conf FILE --pid-file FILE  (HOCON, NanoMQ keys)
  mosquitto            /usr/sbin/mosquitto -c FILE  (the same tests against the reference)

Only processes started here are signalled, always by PID.
"""

import os
import signal
import subprocess

import pytest

from helpers import HOST, free_port, is_mosquitto, read_log, wait_for_listener

HERE = os.path.dirname(os.path.abspath(__file__))
HARBORMQ_BIN = os.environ.get(
    "HARBORMQ_BIN", os.path.normpath(os.path.join(HERE, "..", "..", "build", "harbormq")))
SHARED_DIR = os.environ.get(
    "HARBOR_SHARED_DIR", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared")))
MOSQUITTO_BIN = "/usr/sbin/mosquitto"

# HarborMQ's store file in the data dir (sqlite.mounted_file_path).
DB_NAME = "harbormq.db"

# The mqtt {} keys make_broker gives every broker unless the test overrides them.
DEFAULT_MQTT = {
    "max_inflight_window": 20,
    "max_mqueue_len": 1000,
    "retry_interval": "2s",
    "keepalive_multiplier": 1.25,
    "max_packet_size": "1MB",
    "max_topic_alias": 10,
}

# The SQLite persistence tests (test_persistence.py, test_full_disk.py) set these keys only
# and keep the broker's defaults for the rest (retry_interval 10 s, ...).
# max_packet_size: the broker default advertises Maximum Packet Size 268435456 (legal),
# which paho 1.6 rejects as out of range (it allows 268435455).
STORE_MQTT = {
    "max_mqueue_len": 0,
    "max_inflight_window": 100,
    "max_packet_size": "1MB",
}
# Their Broker keywords: the store on, and longer deadlines for starting on (restoring) a
# store filled under load and for the final commit at SIGTERM.
STORE_OPTIONS = {"persistence": True, "start_timeout": 15.0, "stop_timeout": 20.0}


def proc_status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


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
    """One broker process on a free 127.0.0.1 port. Its config, pid file and log
    (broker.log, appended across restarts with one header line per start) are in tmp_dir;
    its store is in data_dir (tmp_dir/data unless given, e.g. a small tmpfs), kept across
    stop / kill9 / restart, which reuse the port.

    mqtt: the mqtt {} keys to write, exactly these (the fixtures add DEFAULT_MQTT).
    persistence: sqlite {} block (Mosquitto: persistence in data_dir).
    extra_conf: raw HOCON appended (HarborMQ only). extra_args: appended to the command.
    command_prefix: run the broker under e.g. ["prlimit", "--nofile=64:64", "--"] (it must
    exec the broker, so that pid stays the broker's). port: a fixed port.
    conf_path: an existing config file used as is (nothing is written).
    start_timeout / stop_timeout: the default deadlines of start() and stop().
    """

    def __init__(self, tmp_dir, mqtt=None, persistence=False, data_dir=None, extra_conf="",
                 extra_args=(), command_prefix=(), port=None, conf_path=None,
                 start_timeout=10.0, stop_timeout=10.0):
        self.host = HOST
        self.port = port or free_port()
        self.tmp_dir = str(tmp_dir)
        self.data_dir = str(data_dir) if data_dir else os.path.join(self.tmp_dir, "data")
        os.makedirs(self.tmp_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        self.mqtt = dict(mqtt or {})
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.extra_args = list(extra_args)
        self.command_prefix = list(command_prefix)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc = None
        self.pid = None
        self.starts = 0
        self.log_path = os.path.join(self.tmp_dir, "broker.log")
        self.pid_path = os.path.join(self.tmp_dir, "harbormq.pid")
        if conf_path:
            self.conf_path = conf_path
        else:
            self.conf_path = os.path.join(
                self.tmp_dir, "mosquitto.conf" if is_mosquitto() else "harbormq.conf")
            self.write_config()

    @property
    def db_path(self):
        """HarborMQ's SQLite store file."""
        return os.path.join(self.data_dir, DB_NAME)

    # -- config

    def write_config(self):
        """(Re)write conf_path from mqtt, persistence and extra_conf; a test may change
        self.mqtt and call this before restart()."""
        text = self._mosquitto_config() if is_mosquitto() else self._harbormq_config()
        with open(self.conf_path, "w") as f:
            f.write(text)
        return self.conf_path

    def _harbormq_config(self):
        text = ('listeners.tcp { bind = "%s:%d" }\n' % (self.host, self.port) +
                "system { num_taskq_thread = 2 }\n")
        if self.mqtt:
            text += "mqtt {\n  %s\n}\n" % ",\n  ".join(
                "%s = %s" % (k, _hocon_value(v)) for k, v in self.mqtt.items())
        if self.persistence:
            text += 'sqlite {\n  mounted_file_path = "%s/"\n}\n' % self.data_dir
        return text + self.extra_conf

    def _mosquitto_config(self):
        lines = ["per_listener_settings false", "allow_anonymous true", "user root",
                 "log_dest stderr", "log_type all"]
        # the NanoMQ keys that have a Mosquitto equivalent
        for key, name, conv in (("max_inflight_window", "max_inflight_messages", int),
                                ("max_mqueue_len", "max_queued_messages", int),
                                ("max_packet_size", "max_packet_size", _size_bytes)):
            if key in self.mqtt:
                lines.append("%s %d" % (name, conv(self.mqtt[key])))
        if self.persistence:
            lines += ["persistence true", "persistence_location %s/" % self.data_dir,
                      "autosave_interval 1"]
        else:
            lines += ["persistence false"]
        lines += ["listener %d %s" % (self.port, self.host)]
        if "max_topic_alias" in self.mqtt:
            lines.append("max_topic_alias %d" % int(self.mqtt["max_topic_alias"]))
        return "\n".join(lines) + "\n"

    def command(self):
        if is_mosquitto():
            cmd = [MOSQUITTO_BIN, "-c", self.conf_path]
        else:
            # Each broker has its own pid file: a second broker on one pid file refuses to start.
            cmd = [HARBORMQ_BIN, "start", "--conf", self.conf_path, "--pid-file", self.pid_path]
        return self.command_prefix + cmd + self.extra_args

    # -- process control

    def spawn(self):
        """Start the process without waiting for the port (for startup failures)."""
        if not is_mosquitto() and not os.access(HARBORMQ_BIN, os.X_OK):
            pytest.fail("harbormq binary not found or not executable: %s "
                        "(set HARBORMQ_BIN or HARBOR_TEST_TARGET=mosquitto)" % HARBORMQ_BIN)
        assert not self.running(), "broker pid %d already running" % self.pid
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== start #%d: %s\n" % (
                self.starts, " ".join(self.command()).encode()))
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, cwd=self.tmp_dir)
        self.pid = self.proc.pid
        return self.proc

    def start(self, timeout=None):
        """spawn(), then wait until the port accepts TCP (fails the test with the log tail
        if the broker exits first or the deadline passes)."""
        self.spawn()
        wait_for_listener(self.proc, self.host, self.port,
                          self.start_timeout if timeout is None else timeout,
                          self.log_tail, self._kill_quietly)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None, check=True):
        """SIGTERM and wait (kills and fails on timeout). Returns the exit code; with check,
        asserts that it is 0 and that the broker had not exited before."""
        assert self.proc is not None, "broker not started"
        timeout = self.stop_timeout if timeout is None else timeout
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
        """SIGKILL (unless it has exited already) and reap. Returns the exit code."""
        assert self.proc is not None, "broker not started"
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(10)
        self.proc = None
        return rc

    def restart(self):
        """Stop (SIGTERM, exit 0) and start again on the same port and data dir."""
        if self.proc is not None:
            self.stop()
        return self.start()

    def wait_exit(self, timeout=15.0):
        """For a broker expected to fail at startup: its exit code (fails on timeout)."""
        assert self.proc is not None, "broker not started"
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_quietly()
            raise AssertionError("broker still running after %.0fs; log:\n%s" % (
                timeout, self.log_tail()))
        self.proc = None
        return rc

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.proc = None

    # -- observation

    def log_text(self):
        return read_log(self.log_path)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def status_kib(self, field="VmRSS"):
        """The running broker's /proc/PID/status field in KiB (VmRSS, VmHWM)."""
        return proc_status_kib(self.pid, field)
