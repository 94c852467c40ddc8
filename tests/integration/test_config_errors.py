"""HarborMQ configuration handling: unknown keys and bad values are startup errors naming
file, line and key (with "did you mean"); NanoMQ's own nanomq.conf starts; --help works."""

import os
import re
import signal
import subprocess

import pytest

from broker_harness import HARBORMQ_BIN, SHARED_DIR
from helpers import free_port

pytestmark = pytest.mark.harbormq_only


def run_expect_failure(args, timeout=10.0):
    """Run harbormq expecting it to exit on its own with a non-zero code."""
    proc = subprocess.Popen([HARBORMQ_BIN] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        raise AssertionError("harbormq %s kept running (expected a startup error); output:\n%s"
                             % (" ".join(args), out.decode(errors="replace")))
    text = out.decode(errors="replace")
    assert proc.returncode != 0, "exit code 0 for a bad config; output:\n%s" % text
    return text


def write_conf(tmp_path, body):
    port = free_port()
    text = 'listeners.tcp { bind = "127.0.0.1:%d" }\n' % port + body
    path = tmp_path / "bad.conf"
    path.write_text(text)
    return str(path)


def mentions_line(text, path, line):
    return re.search(r"(%s:%d\b|line:? ?%d\b)" % (re.escape(os.path.basename(path)), line, line),
                     text, re.IGNORECASE)


def test_unknown_key_fails_with_file_line_key_and_suggestion(tmp_path):
    path = write_conf(tmp_path, "mqtt {\n  max_inflight_windw = 20\n}\n")
    out = run_expect_failure(["start", "--conf", path])
    assert os.path.basename(path) in out, out
    assert mentions_line(out, path, 3), "line 3 not named:\n" + out
    assert "max_inflight_windw" in out, out
    assert re.search(r"did you mean", out, re.IGNORECASE), out
    assert "max_inflight_window" in out.replace("max_inflight_windw", ""), out


def test_unknown_section_fails_with_suggestion(tmp_path):
    path = write_conf(tmp_path, "mqttt {\n  max_inflight_window = 20\n}\n")
    out = run_expect_failure(["start", "--conf", path])
    assert "mqttt" in out and re.search(r"did you mean", out, re.IGNORECASE), out
    assert mentions_line(out, path, 2), "line 2 not named:\n" + out


def test_bad_value_names_file_line_and_key(tmp_path):
    path = write_conf(tmp_path, "mqtt {\n  retry_interval = 2s\n"
                                "  max_inflight_window = lots\n}\n")
    out = run_expect_failure(["start", "--conf", path])
    assert os.path.basename(path) in out, out
    assert mentions_line(out, path, 4), "line 4 not named:\n" + out
    assert "max_inflight_window" in out, out


def test_unknown_key_in_set_override_fails(tmp_path):
    path = write_conf(tmp_path, "mqtt { max_inflight_window = 20 }\n")
    out = run_expect_failure(["start", "--conf", path, "--set", "mqtt.max_inflight_windw=5"])
    assert "max_inflight_windw" in out and re.search(r"did you mean", out, re.IGNORECASE), out


def test_missing_config_file_fails(tmp_path):
    missing = str(tmp_path / "nope.conf")
    out = run_expect_failure(["start", "--conf", missing])
    assert "nope.conf" in out, out


def test_nanomq_conf_starts_unchanged(make_broker, open_client):
    """DESIGN 1: a NanoMQ user's nanomq.conf starts HarborMQ unchanged (only the listen
    addresses are overridden with --set so parallel test runs do not collide)."""
    conf = os.path.join(SHARED_DIR, "compat", "nanomq", "nanomq.conf")
    assert os.path.exists(conf), conf
    port = free_port()
    args = ["--set", "listeners.tcp.bind=127.0.0.1:%d" % port,
            "--set", "listeners.ws.bind=127.0.0.1:%d/mqtt" % free_port(),
            "--set", "http_server.port=%d" % free_port()]
    broker = make_broker(conf_path=conf, port=port, extra_args=args)
    c = open_client(broker, 4)
    assert c.subscribe([("nano/t", 1)]) == [1]
    c.publish("nano/t", b"compat", qos=1)
    assert c.publishes(1)[0].payload == b"compat"
    c5 = open_client(broker, 5)
    assert c5.is_open()
    c.close()
    c5.close()
    broker.stop()


@pytest.mark.parametrize("args", [["start", "--help"], ["--help"]])
def test_help(args):
    r = subprocess.run([HARBORMQ_BIN] + args, capture_output=True, text=True, timeout=10)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    expected = "--conf" if args[0] == "start" else "start"
    assert expected in text, text


def test_configured_values_are_used(make_broker, open_client):
    """The generated config is really read: max_inflight_window = 3 limits unacked
    deliveries to 3."""
    broker = make_broker(max_inflight_window=3)
    sub = open_client(broker, 4)
    sub.auto_ack = False
    sub.subscribe([("cfg/t", 1)])
    pub = open_client(broker, 4)
    for i in range(6):
        pub.publish("cfg/t", b"%d" % i, qos=1)
    assert len(sub.publishes(3)) == 3
    sub.no_publish(1.0)
