"""Operating a broker safely (issue 9): one broker per data directory and per pid file,
stop/reload/restart signal only a broker that holds its pid file's lock, security settings
we cannot enforce refuse to start, reload applies what it can and reports back, restart
keeps how the broker was started, and the CLI's exit codes are the documented ones."""

import os
import re
import signal
import subprocess

import pytest

import mqttraw as m
from broker_harness import HARBORMQ_BIN
from helpers import HOST, free_port, read_log, wait_for, wait_for_listener

pytestmark = pytest.mark.harbormq_only


class Proc:
    """A harbormq process of the test's own, killed by PID at teardown if still running."""

    def __init__(self, args, cwd, log_path, env=None):
        self.log_path = log_path
        log = open(log_path, "ab")
        self.proc = subprocess.Popen([HARBORMQ_BIN] + args, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        log.close()
        self.pid = self.proc.pid

    def log(self):
        return read_log(self.log_path)

    def wait_listening(self, port, timeout=10.0):
        wait_for_listener(self.proc, HOST, port, timeout, self.log, self.kill)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def procs():
    made = []
    yield made
    for p in made:
        p.kill()


def write_conf(path, port, data_dir=None, pid_file=None, extra=""):
    text = 'listeners.tcp { bind = "%s:%d" }\nsystem { num_taskq_thread = 1 }\n' % (HOST, port)
    if pid_file:
        text = text.replace("num_taskq_thread = 1", 'num_taskq_thread = 1, pid_file = "%s"' % pid_file)
    if data_dir:
        text += 'sqlite { mounted_file_path = "%s" }\n' % data_dir
    text += "log { level = info }\n" + extra
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args, cwd=None, timeout=30, env=None):
    r = subprocess.run([HARBORMQ_BIN] + args, capture_output=True, text=True, timeout=timeout,
                       cwd=cwd, stdin=subprocess.DEVNULL, env=env)
    return r.returncode, r.stdout + r.stderr


def start(procs, tmp_path, name, port, **conf):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    conf_path = write_conf(str(d / "harbormq.conf"), port, **conf)
    p = Proc(["start", "--conf", conf_path], str(d), str(d / "broker.log"))
    procs.append(p)
    return p, conf_path


def connect(port, version=4, client_id="", clean=True, props=None):
    c = m.RawClient(HOST, port, version)
    ack = c.connect(client_id=client_id, clean=clean, props=props)
    assert ack.reason == 0, ack
    return c


def test_second_broker_on_the_same_data_directory_is_refused(procs, tmp_path):
    data = str(tmp_path / "shared-data")
    port_a = free_port()
    first, _ = start(procs, tmp_path, "a", port_a, data_dir=data,
                     pid_file=str(tmp_path / "a.pid"))
    first.wait_listening(port_a)
    second, conf_b = start(procs, tmp_path, "b", free_port(), data_dir=data,
                           pid_file=str(tmp_path / "b.pid"))
    rc = second.proc.wait(15)
    out = second.log()
    assert rc != 0, out
    assert "sqlite.mounted_file_path" in out and data in out, out
    assert "pid %d" % first.pid in out, out
    assert conf_b in out, "the error names the file: " + out
    assert first.proc.poll() is None, "the first broker must keep running"


def test_second_broker_on_the_same_pid_file_is_refused_and_stop_still_works(procs, tmp_path):
    pid_file = str(tmp_path / "one.pid")
    port = free_port()
    first, _ = start(procs, tmp_path, "a", port, pid_file=pid_file)
    first.wait_listening(port)
    second, _ = start(procs, tmp_path, "b", free_port(), pid_file=pid_file)
    assert second.proc.wait(15) != 0
    out = second.log()
    assert "system.pid_file" in out and "pid %d" % first.pid in out, out
    with open(pid_file) as f:
        assert f.read().strip() == str(first.pid), "the pid file must still name the first broker"
    rc, out = run(["stop", "--pid-file", pid_file])
    assert rc == 0, out
    assert first.proc.wait(30) == 0
    assert not os.path.exists(pid_file), "a clean stop removes the pid file"


def test_stop_does_not_signal_a_foreign_pid(tmp_path):
    pid_file = str(tmp_path / "stale.pid")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with open(pid_file, "w") as f:
            f.write("%d\n" % sleeper.pid)
        # (restart with no broker running starts one: its own test covers it.)
        for command in ("stop", "reload"):
            rc, out = run([command, "--pid-file", pid_file])
            assert rc == 1, out
            assert "stale" in out and str(sleeper.pid) in out, out
        # A signal would already be delivered when the command returned; give it a moment.
        with pytest.raises(subprocess.TimeoutExpired):
            sleeper.wait(0.3)
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_stop_without_a_pid_file_says_so(tmp_path):
    rc, out = run(["stop", "--pid-file", str(tmp_path / "none.pid")])
    assert rc == 1 and "does not exist" in out, out


@pytest.mark.parametrize("body,key,line", [
    ("auth {\n  allow_anonymous = true\n}\nauthorization {\n  no_match = deny\n}\n",
     "authorization", 7),
])
def test_unenforced_protection_refuses_to_start(procs, tmp_path, body, key, line):
    port = free_port()
    p, conf = start(procs, tmp_path, "a", port, pid_file=str(tmp_path / "a.pid"), extra=body)
    rc = p.proc.wait(15)
    out = p.log()
    assert rc != 0, "a broker that asks for %s must not start open:\n%s" % (key, out)
    assert "%s:%d: %s" % (conf, line, key) in out, out
    assert "not implemented yet" in out, out
    with pytest.raises(OSError):
        m.RawClient(HOST, port, 4, timeout=1.0)


def test_anonymous_true_and_websocket_still_start(procs, tmp_path):
    port = free_port()
    p, _ = start(procs, tmp_path, "a", port, pid_file=str(tmp_path / "a.pid"),
                 extra='auth { allow_anonymous = true, no_match = allow }\n'
                       'listeners.ws { bind = "127.0.0.1:%d/mqtt" }\n' % free_port())
    p.wait_listening(port)
    connect(port).close()


def test_reload_applies_reloadable_keys_under_live_connections(procs, tmp_path):
    port = free_port()
    pid_file = str(tmp_path / "r.pid")
    p, conf = start(procs, tmp_path, "a", port, pid_file=pid_file,
                    extra="mqtt { max_packet_size = 1MB, max_topic_alias = 10 }\n")
    p.wait_listening(port)
    live = connect(port, 5, client_id="live")
    assert live.subscribe([("r/t", 1)]) == [1]
    before = connect(port, 5)
    assert before.connack.props.get(m.P_MAXIMUM_PACKET_SIZE) == 1024 * 1024
    before.close()

    text = open(conf).read().replace("max_packet_size = 1MB", "max_packet_size = 2KB")
    text = text.replace("max_topic_alias = 10", "max_topic_alias = 3")
    text = text.replace('bind = "%s:%d"' % (HOST, port), 'bind = "%s:%d"' % (HOST, free_port()))
    open(conf, "w").write(text)
    rc, out = run(["reload", "--pid-file", pid_file])
    assert rc == 0, out
    assert "applied: mqtt.max_packet_size = 2048" in out, out
    assert "applied: mqtt.max_topic_alias = 3" in out, out
    assert "needs a restart: listeners.tcp.bind" in out, out

    after = connect(port, 5)  # still on the old port: the bind needs a restart
    assert after.connack.props.get(m.P_MAXIMUM_PACKET_SIZE) == 2048
    assert after.connack.props.get(m.P_TOPIC_ALIAS_MAXIMUM) == 3
    after.publish("r/t", b"after reload", qos=1)
    assert live.publishes(1)[0].payload == b"after reload", "the live connection was kept"
    assert "reload" in p.log()
    live.close()
    after.close()


def test_reload_with_a_broken_file_applies_nothing_and_says_where(procs, tmp_path):
    port = free_port()
    pid_file = str(tmp_path / "r.pid")
    p, conf = start(procs, tmp_path, "a", port, pid_file=pid_file,
                    extra="mqtt { max_packet_size = 1MB }\n")
    p.wait_listening(port)
    live = connect(port, 4)
    original = open(conf).read()
    open(conf, "w").write(original.replace("mqtt { max_packet_size = 1MB }",
                                           "mqtt {\n  max_packet_size = 2KB\n  max_inflight_windw = 3\n}"))
    rc, out = run(["reload", "--pid-file", pid_file])
    assert rc == 1, out
    assert "%s:6: mqtt.max_inflight_windw" % conf in out, out
    assert "nothing applied" in out, out
    fresh = connect(port, 5)
    assert fresh.connack.props.get(m.P_MAXIMUM_PACKET_SIZE) == 1024 * 1024, "nothing applied"
    assert live.ping()
    # A file asking for a protection we cannot give is refused the same way.
    open(conf, "w").write(original + "authorization {\n  no_match = deny\n}\n")
    rc, out = run(["reload", "--pid-file", pid_file])
    assert rc == 1 and "authorization" in out and "not implemented yet" in out, out
    assert p.proc.poll() is None


def test_sighup_from_kill_reloads_too(procs, tmp_path):
    port = free_port()
    p, conf = start(procs, tmp_path, "a", port, pid_file=str(tmp_path / "r.pid"),
                    extra="mqtt { max_packet_size = 1MB }\n")
    p.wait_listening(port)
    text = open(conf).read()
    open(conf, "w").write(text.replace("1MB", "4KB"))
    os.kill(p.pid, signal.SIGHUP)
    wait_for(lambda: "applied: mqtt.max_packet_size = 4096" in p.log(), 10, what="reload in the log")
    c = connect(port, 5)
    assert c.connack.props.get(m.P_MAXIMUM_PACKET_SIZE) == 4096


def test_restart_keeps_the_command_line_and_working_directory(procs, tmp_path):
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    pid_file = str(tmp_path / "restart.pid")
    write_conf(str(home / "harbormq.conf"), free_port(), data_dir="./data")
    env = dict(os.environ, HARBORMQ_MQTT__MAX_TOPIC_ALIAS="7")
    p = Proc(["start", "--conf", "harbormq.conf", "--pid-file", pid_file,
              "--set", "listeners.tcp.bind=%s:%d" % (HOST, port)],
             str(home), str(home / "first.log"), env=env)
    procs.append(p)
    p.wait_listening(port)
    pub = connect(port, 4)
    pub.publish("keep/me", b"retained", qos=1, retain=True)
    pub.close()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = Proc(["restart", "--pid-file", pid_file], str(elsewhere), str(elsewhere / "restart.log"))
    procs.append(again)
    assert p.proc.wait(30) == 0, p.log()
    again.wait_listening(port)
    assert not os.path.exists(elsewhere / "data"), "restart must not use the caller's directory"
    c = connect(port, 5)
    assert c.connack.props.get(m.P_TOPIC_ALIAS_MAXIMUM) == 7, "the environment override is kept"
    c.subscribe([("keep/me", 1)])
    assert c.publishes(1)[0].payload == b"retained", "the same data directory"
    c.close()
    rc, out = run(["stop", "--pid-file", pid_file])
    assert rc == 0, out
    assert again.proc.wait(30) == 0


def test_runtime_startup_errors_name_the_key_and_file(procs, tmp_path):
    port = free_port()
    first, _ = start(procs, tmp_path, "a", port, pid_file=str(tmp_path / "a.pid"))
    first.wait_listening(port)
    busy, conf = start(procs, tmp_path, "b", port, pid_file=str(tmp_path / "b.pid"))
    assert busy.proc.wait(15) != 0
    assert "%s:1: listeners.tcp.bind" % conf in busy.log(), busy.log()
    assert "in use" in busy.log(), busy.log()

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    bad, conf = start(procs, tmp_path, "c", free_port(), pid_file=str(tmp_path / "c.pid"),
                      data_dir=str(blocker / "data"))
    assert bad.proc.wait(15) != 0
    assert "%s:3: sqlite.mounted_file_path" % conf in bad.log(), bad.log()


def test_version_unknown_command_and_bad_option_exit_codes():
    rc, out = run(["--version"])
    assert rc == 0 and re.match(r"harbormq \d+\.\d+\.\d+", out), out
    rc, out2 = run(["-v"])
    assert rc == 0 and out2 == out
    rc, out = run(["statr"])
    assert rc == 1 and 'unknown command "statr"' in out and "start" in out, out
    for args in (["bench", "pub", "--qos", "7"], ["start", "--conf", "/nonexistent.conf"],
                 ["sub", "--no-such-option"], ["pub", "-p", "notaport", "-t", "a", "-m", "x"]):
        rc, out = run(args)
        assert rc == 1, "%s exited %d: %s" % (args, rc, out)


def test_service_manager_notifications(procs, tmp_path):
    """Type=notify: READY=1 once listening, RELOADING=1 then READY=1 on reload, STOPPING=1 on
    stop, sent to $NOTIFY_SOCKET as systemd's sd_notify does."""
    import socket as pysocket
    sock_path = str(tmp_path / "notify.sock")
    server = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(10)

    def next_message():
        return server.recv(4096).decode()

    try:
        port = free_port()
        pid_file = str(tmp_path / "n.pid")
        d = tmp_path / "n"
        d.mkdir()
        conf = write_conf(str(d / "harbormq.conf"), port, pid_file=pid_file)
        p = Proc(["start", "--conf", conf], str(d), str(d / "broker.log"),
                 env=dict(os.environ, NOTIFY_SOCKET=sock_path))
        procs.append(p)
        ready = next_message()
        assert "READY=1" in ready and "127.0.0.1:%d" % port in ready, ready
        connect(port).close()  # it listens once it said so
        rc, out = run(["reload", "--pid-file", pid_file])
        assert rc == 0, out
        assert "RELOADING=1" in next_message()
        assert "READY=1" in next_message()
        rc, out = run(["stop", "--pid-file", pid_file])
        assert rc == 0, out
        assert "STOPPING=1" in next_message()
    finally:
        server.close()
