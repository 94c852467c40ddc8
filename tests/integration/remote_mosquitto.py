"""A Debian Mosquitto as the remote end of a bridge, and a paho subscriber that counts
what arrives, for the bridge integration tests.

    with RemoteMosquitto(tmp_path / "remote", persistence=True) as remote:
        sub = collect(remote.port, "bridged/#", qos=1, client_id="remote-sub")
        ...
        sub.wait_count(10, timeout=5)
        sub.stop()

RemoteMosquitto runs /usr/sbin/mosquitto -c FILE on 127.0.0.1 at a free port (kept across
stop / kill / restart, like the persistence dir). Its config, log (mosquitto.log, the
`log_dest file`) and stdout/stderr (mosquitto.out: what it prints before the log file is
open, e.g. config errors) are in its tmp dir. It is signalled by PID only; a process still
running at interpreter exit is killed (atexit guard), so none is left behind.

Collector is a paho-mqtt 1.6 subscriber on its own network thread that records every
message as Received(topic, payload, qos, retain, dup) in a thread-safe list.
"""

import atexit
import collections
import os
import pwd
import signal
import subprocess
import tempfile
import threading

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from helpers import HOST, free_port, read_log, unique_id, wait_for_listener

MOSQUITTO_BIN = "/usr/sbin/mosquitto"

# Popen objects of every mosquitto started here and not yet reaped (the atexit guard).
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers():
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_leftovers)


class RemoteMosquitto:
    """Mosquitto 2.0 on 127.0.0.1:port as a bridge remote.

    tmp_dir: where the config, logs and (persistence) the store go; a fresh temp dir when
    None. persistence: `persistence true` in tmp_dir/data (mosquitto writes its store on a
    clean stop and every autosave_interval seconds when that is given).
    max_inflight_messages / max_queued_messages: 0 = unlimited (the defaults here).
    extra_lines: more config lines (a str or a list). port: a fixed port.
    """

    def __init__(self, tmp_dir=None, persistence=False, autosave_interval=None,
                 max_inflight_messages=0, max_queued_messages=0, extra_lines=(), port=None,
                 start_timeout=10.0, stop_timeout=10.0):
        self.host = HOST
        self.port = port or free_port()
        if tmp_dir is None:
            tmp_dir = tempfile.mkdtemp(prefix="remote-mosquitto-")
        self.tmp_dir = str(tmp_dir)
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.data_dir = os.path.join(self.tmp_dir, "data")
        self.persistence = persistence
        if persistence:
            os.makedirs(self.data_dir, exist_ok=True)
        self.autosave_interval = autosave_interval
        self.max_inflight_messages = max_inflight_messages
        self.max_queued_messages = max_queued_messages
        self.extra_lines = [extra_lines] if isinstance(extra_lines, str) else list(extra_lines)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.conf_path = os.path.join(self.tmp_dir, "mosquitto.conf")
        self.log_path = os.path.join(self.tmp_dir, "mosquitto.log")
        self.out_path = os.path.join(self.tmp_dir, "mosquitto.out")
        self.proc = None
        self.pid = None
        self.starts = 0
        self.write_config()

    # -- config

    def config_text(self):
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            # root would drop to user mosquitto, which cannot write our tmp dir
            "user %s" % pwd.getpwuid(os.getuid()).pw_name,
            "listener %d %s" % (self.port, self.host),
            "max_inflight_messages %d" % self.max_inflight_messages,
            "max_queued_messages %d" % self.max_queued_messages,
            "log_dest file %s" % self.log_path,
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
        ]
        if self.persistence:
            lines += ["persistence true", "persistence_location %s/" % self.data_dir]
            if self.autosave_interval is not None:
                lines.append("autosave_interval %d" % self.autosave_interval)
        else:
            lines.append("persistence false")
        return "\n".join(lines + self.extra_lines) + "\n"

    def write_config(self):
        """(Re)write conf_path; change attributes (e.g. extra_lines) and restart() after."""
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        return self.conf_path

    def command(self):
        return [MOSQUITTO_BIN, "-c", self.conf_path]

    # -- process control

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._kill_quietly()
        except Exception:
            pass

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=None):
        """Start and wait until the port accepts TCP (deadline start_timeout, 10 s);
        fails the test with the log tail if mosquitto exits first or never listens."""
        assert not self.running(), "mosquitto pid %d already running" % self.pid
        self.starts += 1
        with open(self.out_path, "ab") as out:
            out.write(b"\n===== start #%d: %s\n" % (self.starts, " ".join(self.command()).encode()))
            out.flush()
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, cwd=self.tmp_dir)
        self.pid = self.proc.pid
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        wait_for_listener(self.proc, self.host, self.port,
                          self.start_timeout if timeout is None else timeout,
                          self.log_tail, self._kill_quietly)
        return self

    def stop(self, timeout=None, check=True):
        """SIGTERM by pid and wait (SIGKILL and fail on timeout). Returns the exit code;
        with check, asserts it is 0 and that mosquitto had not exited on its own."""
        assert self.proc is not None, "mosquitto not started"
        timeout = self.stop_timeout if timeout is None else timeout
        rc = self.proc.poll()
        if rc is not None:
            self._forget()
            assert not check, "mosquitto had already exited with %d; log:\n%s" % (
                rc, self.log_tail())
            return rc
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_quietly()
            raise AssertionError("mosquitto did not exit within %.0fs of SIGTERM; log:\n%s" % (
                timeout, self.log_tail()))
        self._forget()
        if check:
            assert rc == 0, "mosquitto exit code %d after SIGTERM; log:\n%s" % (
                rc, self.log_tail())
        return rc

    def kill(self):
        """SIGKILL by pid (unless it has exited already) and reap. Returns the exit code."""
        assert self.proc is not None, "mosquitto not started"
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(10)
        self._forget()
        return rc

    def restart(self, timeout=None):
        """stop() (exit 0) if running, then start() on the same port and persistence dir."""
        if self.proc is not None:
            self.stop()
        return self.start(timeout)

    def close(self):
        """Stop if still running (SIGTERM, then SIGKILL); never fails on the exit code."""
        if self.proc is None:
            return
        try:
            self.stop(check=False)
        except AssertionError:
            pass
        self._kill_quietly()

    def _forget(self):
        with _LIVE_LOCK:
            _LIVE.discard(self.proc)
        self.proc = None

    def _kill_quietly(self):
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc is not None:
            self._forget()

    # -- observation

    def log_text(self):
        """The log file, then what mosquitto printed on stdout/stderr."""
        return read_log(self.log_path) + read_log(self.out_path)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


Received = collections.namedtuple("Received", "topic payload qos retain dup")


class Collector:
    """paho-mqtt 1.6 subscriber to topic_filter at qos on 127.0.0.1:port, recording every
    message as Received(topic, payload, qos, retain, dup). The constructor returns once
    the SUBACK is in (deadline `timeout`). version 4 (3.1.1) or 5; with 5 and clean=False
    the session expiry is session_expiry (default: never). It subscribes again in
    on_connect, so after one of paho's own reconnects it keeps receiving (nothing more
    is done about reconnects). Counters: connects, disconnects.
    """

    def __init__(self, port, topic_filter, qos=1, client_id=None, clean=True, version=4,
                 session_expiry=None, host=HOST, keepalive=30, timeout=10.0):
        self.port, self.host = port, host
        self.topic_filter, self.qos = topic_filter, qos
        self.client_id = client_id if client_id is not None else unique_id("collect")
        self.version = version
        self._cond = threading.Condition()
        self._messages = []
        self.connects = 0
        self.disconnects = 0
        self.session_present = None
        self._subacks = 0
        self.connack_rc = None
        if version == 5:
            self.c = paho.Client(self.client_id, protocol=paho.MQTTv5)
        else:
            self.c = paho.Client(self.client_id, clean_session=clean, protocol=paho.MQTTv311)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        if version == 5:
            props = Properties(PacketTypes.CONNECT)
            if not clean:
                props.SessionExpiryInterval = (0xFFFFFFFF if session_expiry is None
                                               else session_expiry)
            self.c.connect(host, port, keepalive, clean_start=clean, properties=props)
        else:
            self.c.connect(host, port, keepalive)
        self.c.loop_start()
        with self._cond:
            ok = self._cond.wait_for(lambda: self._subacks > 0 or self.connack_rc, timeout)
        if not ok or self.connack_rc:
            self.stop()
            raise AssertionError("collector %s on port %d: no SUBACK within %.1fs "
                                 "(CONNACK rc=%r)" % (self.client_id, port, timeout,
                                                       self.connack_rc))

    def _on_connect(self, client, userdata, flags, rc, props=None):
        rc = rc.value if hasattr(rc, "value") else int(rc)
        with self._cond:
            self.connack_rc = rc
            if rc == 0:
                self.connects += 1
                self.session_present = bool(flags.get("session present"))
            self._cond.notify_all()
        if rc == 0:
            client.subscribe(self.topic_filter, self.qos)

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        with self._cond:
            self._subacks += 1
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self._messages.append(Received(msg.topic, bytes(msg.payload), msg.qos,
                                           bool(msg.retain), bool(msg.dup)))
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, rc, props=None):
        with self._cond:
            self.disconnects += 1
            self._cond.notify_all()

    # -- results

    @property
    def messages(self):
        """A copy of what was received so far, in order."""
        with self._cond:
            return list(self._messages)

    def count(self):
        with self._cond:
            return len(self._messages)

    def payloads(self):
        return [m.payload for m in self.messages]

    def wait_count(self, n, timeout=5.0):
        """Wait until at least n messages were received; returns them (a copy), fails
        (AssertionError, with the last ones) at the deadline."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._messages) >= n, timeout)
            got = list(self._messages)
        assert len(got) >= n, "collector %s: %d/%d messages within %.1fs; last: %r" % (
            self.client_id, len(got), n, timeout, [(m.topic, m.payload[:30]) for m in got[-5:]])
        return got

    def expect_no_more(self, n, duration=1.0):
        """Absence check: wait the whole duration and fail as soon as more than n messages
        are in. Returns the messages."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._messages) > n, duration)
            got = list(self._messages)
        assert len(got) <= n, "collector %s: expected at most %d messages within %.1fs, " \
            "got %d: %r" % (self.client_id, n, duration, len(got),
                            [(m.topic, m.payload[:30]) for m in got[n:n + 5]])
        return got

    def stop(self):
        """DISCONNECT (a clean=False session stays on the broker) and end the network
        thread."""
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def collect(port, topic_filter, qos=1, client_id=None, clean=True, **kw):
    """A started Collector (subscribed when this returns)."""
    return Collector(port, topic_filter, qos, client_id, clean, **kw)
