"""Logging (the `log {}` section): outputs, rotation, syslog, the connect and disconnect
lines with their reasons, the level on reload, and an unwritable log directory refusing to
start. Real broker processes; every wait has a deadline."""

import os
import re
import socket
import subprocess

import pytest

import mqttraw
from broker_harness import HARBORMQ_BIN
from helpers import free_port, read_log, wait_for

pytestmark = pytest.mark.harbormq_only


def log_conf(to, log_dir, file_name="b.log", level="info", extra=""):
    return ('log {\n  to = [%s]\n  level = %s\n  dir = "%s"\n  file = "%s"\n%s}\n'
            % (", ".join(to), level, log_dir, file_name, extra))


def client_port(client):
    return client.sock.getsockname()[1]


def connected_re(client_id, port, version, keepalive, clean_word, clean, present):
    return re.compile(
        r'\[info\] client "%s" connected from 127\.0\.0\.1:%d \(MQTT %s, keepalive %d s, '
        r"%s %d, session present %d\)$" % (re.escape(client_id), port, re.escape(version),
                                           keepalive, clean_word, clean, present),
        re.M)


def disconnected_re(client_id, port, reason):
    return re.compile(r'\[info\] client "%s" disconnected from 127\.0\.0\.1:%d: %s$' % (
        re.escape(client_id), port, reason), re.M)


def wait_match(read, pattern, timeout=5.0):
    return wait_for(lambda: pattern.search(read()), timeout, what=pattern.pattern)


def count_disconnects(text, client_id):
    return len(re.findall(r'client "%s" disconnected from ' % re.escape(client_id), text))


# ---------------------------------------------------------------- outputs


def test_file_only_writes_the_file_and_not_the_console(make_broker, tmp_path):
    log_dir = tmp_path / "logs"
    b = make_broker(extra_conf=log_conf(["file"], log_dir))
    path = str(log_dir / "b.log")
    read = lambda: read_log(path)
    wait_match(read, re.compile(r"\[info\] HarborMQ \S+ ready in \d+ ms: listening on "))
    c = mqttraw.RawClient(b.host, b.port, 5)
    c.connect("file-only", keepalive=60)
    port = client_port(c)
    wait_match(read, connected_re("file-only", port, "5.0", 60, "clean start", 1, 0))
    c.disconnect_and_wait()
    wait_match(read, disconnected_re("file-only", port,
                                     re.escape("client sent DISCONNECT: Normal disconnection (0x00)")))
    b.stop()
    # The last lines before the process ends are on disk.
    assert re.search(r"\[info\] HarborMQ stopped after ", read()), read()[-2000:]
    console = b.log_text()
    assert "file-only" not in console and "HarborMQ stopped" not in console, console


def test_file_and_console_both_get_the_lines(make_broker, tmp_path):
    log_dir = tmp_path / "logs"
    b = make_broker(extra_conf=log_conf(["file", "console"], log_dir, "both.log"))
    c = mqttraw.RawClient(b.host, b.port, 4)
    c.connect("both-outputs", keepalive=30, clean=False)
    pattern = connected_re("both-outputs", client_port(c), "3.1.1", 30, "clean session", 0, 0)
    wait_match(lambda: read_log(str(log_dir / "both.log")), pattern)
    wait_match(b.log_text, pattern)
    c.close()
    b.stop()
    assert "HarborMQ stopped after" in read_log(str(log_dir / "both.log"))
    assert "HarborMQ stopped after" in b.log_text()


def test_start_banner_at_the_default_level(make_broker):
    # No log section: info to the console (stderr), which the harness keeps in broker.log.
    b = make_broker()
    wait_match(b.log_text, re.compile(
        r"\[info\] HarborMQ \S+ ready in \d+ ms: .*, log info to console$", re.M))
    c = mqttraw.RawClient(b.host, b.port, 4)
    c.connect("default-level")
    wait_match(b.log_text, connected_re("default-level", client_port(c), "3.1.1", 60,
                                        "clean session", 1, 0))
    c.close()
    b.stop()
    text = b.log_text()
    assert re.search(r"\[info\] received SIGTERM, shutting down$", text, re.M), text
    assert re.search(r"\[info\] totals: ", text), text
    assert re.search(r"\[info\] HarborMQ stopped after ", text), text


def test_rotation_keeps_count_numbered_files(make_broker, tmp_path):
    log_dir = tmp_path / "logs"
    b = make_broker(extra_conf=log_conf(
        ["file"], log_dir, "rot.log", extra="  rotation { size = 1KB, count = 2 }\n"))
    path = str(log_dir / "rot.log")
    # Each client writes a connect and a disconnect line (~120 bytes each).
    for i in range(30):
        c = mqttraw.RawClient(b.host, b.port, 4)
        c.connect("rotating-client-%02d" % i)
        c.disconnect_and_wait()
    wait_for(lambda: "rotating-client-29\" disconnected" in read_log(path), 5,
             what="the last disconnect line")
    b.stop()
    names = sorted(os.listdir(str(log_dir)))
    assert names == ["rot.1.log", "rot.2.log", "rot.log"], names
    for name in names:
        assert os.path.getsize(str(log_dir / name)) <= 1024, name
    # Newest in rot.log; rot.1.log holds what came just before it.
    assert "HarborMQ stopped after" in read_log(path)
    older = read_log(str(log_dir / "rot.1.log"))
    assert "rotating-client-" in older, older


def test_rotation_keys_are_not_reported_unimplemented(make_broker, tmp_path):
    b = make_broker(extra_conf=log_conf(
        ["console"], tmp_path, extra="  rotation { size = 10MB, count = 5 }\n"))
    wait_match(b.log_text, re.compile(r"HarborMQ \S+ ready in "))
    assert "log.rotation" not in b.log_text()


# ---------------------------------------------------------------- syslog


def test_syslog_output_does_not_break_the_broker(make_broker, tmp_path):
    """With /dev/log absent, a local datagram socket stands in for syslogd and must receive
    the broker's lines with ident harbormq; with a real /dev/log the broker must just run."""
    listener = None
    if not os.path.exists("/dev/log"):
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind("/dev/log")
            listener.settimeout(0.2)
        except OSError:
            listener = None
    try:
        b = make_broker(extra_conf=log_conf(["syslog", "console"], tmp_path))
        c = mqttraw.RawClient(b.host, b.port, 5)
        c.connect("via-syslog")
        wait_match(b.log_text, re.compile(r'client "via-syslog" connected from '))
        assert c.is_open()
        c.disconnect_and_wait()
        if listener is not None:
            got = []

            def received():
                try:
                    got.append(listener.recv(4096).decode("utf-8", "replace"))
                except socket.timeout:
                    pass
                return any('client "via-syslog" connected' in g for g in got)

            wait_for(received, 5, what="the connect line on the syslog socket")
            line = next(g for g in got if "via-syslog" in g)
            assert re.match(r"<14>.*harbormq\[%d\]: client \"via-syslog\"" % b.pid, line), line
        b.stop()
    finally:
        if listener is not None:
            listener.close()
            os.unlink("/dev/log")


# ---------------------------------------------------------------- connect and disconnect


@pytest.mark.parametrize("version,name", [(3, "3.1"), (4, "3.1.1"), (5, "5.0")])
def test_connect_line_names_id_address_version_keepalive_clean(make_broker, version, name):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, version)
    cid = "sensor-v%d" % version
    c.connect(cid, keepalive=45, clean=True)
    port = client_port(c)
    word = "clean start" if version == 5 else "clean session"
    wait_match(b.log_text, connected_re(cid, port, name, 45, word, 1, 0))
    c.disconnect_and_wait()
    reason = (re.escape("client sent DISCONNECT: Normal disconnection (0x00)") if version == 5
              else "client sent DISCONNECT")
    wait_match(b.log_text, disconnected_re(cid, port, reason))
    assert count_disconnects(b.log_text(), cid) == 1


def test_session_present_is_logged_on_resume(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 4)
    c.connect("resumer", clean=False)
    c.disconnect_and_wait()
    c2 = mqttraw.RawClient(b.host, b.port, 4)
    c2.connect("resumer", clean=False)
    wait_match(b.log_text, connected_re("resumer", client_port(c2), "3.1.1", 60,
                                        "clean session", 0, 1))
    c2.close()


def test_disconnect_with_will_reason(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 5)
    c.connect("will-leaver", will={"topic": "w/t", "payload": b"bye"})
    port = client_port(c)
    c.disconnect_and_wait(reason=0x04)
    wait_match(b.log_text, disconnected_re("will-leaver", port, re.escape(
        "client sent DISCONNECT: Disconnect with Will Message (0x04)")))


def test_disconnect_followed_at_once_by_close_is_still_a_disconnect(make_broker):
    # DISCONNECT and FIN can arrive in one read: the packet before the EOF names the reason.
    b = make_broker()
    ports = []
    for i in range(5):
        c = mqttraw.RawClient(b.host, b.port, 5)
        c.connect("quick-leaver-%d" % i)
        ports.append(client_port(c))
        c.disconnect()
    for i, port in enumerate(ports):
        wait_match(b.log_text, disconnected_re("quick-leaver-%d" % i, port, re.escape(
            "client sent DISCONNECT: Normal disconnection (0x00)")))


def test_socket_closed_by_peer(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 4)
    c.connect("vanisher")
    port = client_port(c)
    c.close()
    wait_match(b.log_text, disconnected_re("vanisher", port, "socket closed by peer"))


def test_keepalive_timeout_reason(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 5)
    c.connect("sleepy", keepalive=1)
    port = client_port(c)
    c.wait_closed(10)
    wait_match(b.log_text, disconnected_re(
        "sleepy", port, r"keepalive timeout \(\d+ s without a packet, keepalive 1 s\)"))


def test_protocol_error_reason(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 4)
    c.connect("bad-publisher")
    port = client_port(c)
    # A wildcard in a PUBLISH topic is a protocol violation [MQTT-3.3.2-2].
    c.send(mqttraw.publish_packet("a/+/b", b"x"))
    c.wait_closed(5)
    wait_match(b.log_text, disconnected_re("bad-publisher", port, re.escape(
        "protocol error: wildcard in PUBLISH topic, Topic Name invalid (0x90)")))


def test_takeover_names_the_new_connection(make_broker):
    b = make_broker()
    old = mqttraw.RawClient(b.host, b.port, 5)
    old.connect("twin")
    old_port = client_port(old)
    new = mqttraw.RawClient(b.host, b.port, 5)
    new.connect("twin")
    new_port = client_port(new)
    wait_match(b.log_text, disconnected_re(
        "twin", old_port, r"taken over by a new connection from 127\.0\.0\.1:%d" % new_port))
    new.close()
    wait_match(b.log_text, disconnected_re("twin", new_port, "socket closed by peer"))
    text = b.log_text()
    assert count_disconnects(text, "twin") == 2, text


def test_server_shutdown_reason_and_one_line_per_connection(make_broker):
    b = make_broker()
    clients = []
    for i in range(3):
        c = mqttraw.RawClient(b.host, b.port, 5 if i % 2 else 4)
        c.connect("stay-%d" % i)
        clients.append(c)
    ports = [client_port(c) for c in clients]
    wait_for(lambda: all('client "stay-%d" connected' % i in b.log_text() for i in range(3)), 5,
             what="three connect lines")
    b.stop()
    text = b.log_text()
    for i, port in enumerate(ports):
        assert disconnected_re("stay-%d" % i, port, "server shutdown").search(text), text
        assert count_disconnects(text, "stay-%d" % i) == 1, text
    for c in clients:
        c.close()


def test_refused_connect_is_logged(make_broker):
    b = make_broker()
    c = mqttraw.RawClient(b.host, b.port, 4)
    # 3.1.1: an empty client id needs a clean session [MQTT-3.1.3-8].
    ack = c.connect("", clean=False)
    assert ack.reason != 0
    wait_match(b.log_text, re.compile(
        r"\[info\] connection from 127\.0\.0\.1:%d closed before CONNECT was accepted: "
        r"CONNECT refused: Client Identifier not valid \(0x85\)" % client_port(c)))


# ---------------------------------------------------------------- level reload


def test_level_is_reloadable(make_broker, tmp_path):
    log_dir = tmp_path / "logs"
    b = make_broker(extra_conf=log_conf(["file"], log_dir, "lvl.log", level="warn"))
    path = str(log_dir / "lvl.log")
    quiet = mqttraw.RawClient(b.host, b.port, 4)
    quiet.connect("before-reload")
    quiet.disconnect_and_wait()
    with open(b.conf_path) as f:
        text = f.read()
    with open(b.conf_path, "w") as f:
        f.write(text.replace("level = warn", "level = info"))
    out = subprocess.run([HARBORMQ_BIN, "reload", "--pid-file", b.pid_path],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "log.level" in out.stdout + out.stderr, out.stdout + out.stderr
    loud = mqttraw.RawClient(b.host, b.port, 4)
    loud.connect("after-reload")
    wait_match(lambda: read_log(path), re.compile(r'client "after-reload" connected from '))
    assert "before-reload" not in read_log(path)
    loud.close()


# ---------------------------------------------------------------- refusing to start


def test_unwritable_log_dir_refuses_to_start_naming_key_and_file(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("a regular file, not a directory\n")
    bad_dir = str(blocker / "logs")
    conf = tmp_path / "bad-log.conf"
    port = free_port()
    conf.write_text('listeners.tcp { bind = "127.0.0.1:%d" }\n' % port +
                    "log {\n  to = [file, console]\n  dir = \"%s\"\n  file = \"x.log\"\n}\n"
                    % bad_dir)
    proc = subprocess.run(
        [HARBORMQ_BIN, "start", "--conf", str(conf), "--pid-file", str(tmp_path / "p.pid")],
        capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0, proc.stderr
    expected = '%s:4: log.dir: cannot open the log file "%s/x.log" for writing: Not a directory' % (
        conf, bad_dir)
    assert expected in proc.stderr, proc.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
