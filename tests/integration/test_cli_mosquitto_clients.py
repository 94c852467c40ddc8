"""Interoperability with the Mosquitto command-line clients (mosquitto_pub / mosquitto_sub)."""

import subprocess
import threading

import pytest

PROTOCOLS = ["mqttv311", "mqttv5"]
FORMAT = "MSG %t %q %r %p"


class Sub:
    """mosquitto_sub in the background; -d debug output tells us when SUBACK arrived."""

    def __init__(self, broker, version, topic, qos, count):
        # stdbuf: line-buffer stdout so "-d" progress lines arrive while it runs
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
               "-V", version, "-t", topic, "-q", str(qos), "-C", str(count), "-d", "-F", FORMAT]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pred, timeout=5.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(x) for x in self.lines), timeout)
        assert ok, "mosquitto_sub output never matched; output:\n%s" % "\n".join(self.lines)

    def wait_subscribed(self):
        self.wait_line(lambda x: "received SUBACK" in x)

    def finish(self, timeout=10.0):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("mosquitto_sub did not exit; output:\n%s" % "\n".join(
                self.lines))
        self.reader.join(5)
        assert rc == 0, "mosquitto_sub exit %d; output:\n%s" % (rc, "\n".join(self.lines))
        return [x.split(" ", 4)[1:] for x in self.lines if x.startswith("MSG ")]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def subs():
    made = []
    yield made
    for s in made:
        s.kill()


def mosquitto_pub(broker, version, topic, message, qos=0, retain=False):
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version,
           "-t", topic, "-m", message, "-q", str(qos)]
    if retain:
        cmd.append("-r")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, "mosquitto_pub failed: %s %s" % (r.stdout, r.stderr)


@pytest.mark.parametrize("version", PROTOCOLS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_sub_round_trip(broker, subs, version, qos):
    s = Sub(broker, version, "cli/rt/#", qos, 3)
    subs.append(s)
    s.wait_subscribed()
    for i in range(3):
        mosquitto_pub(broker, version, "cli/rt/%d" % i, "hello %d" % i, qos=qos)
    got = s.finish()
    assert got == [["cli/rt/%d" % i, str(qos), "0", "hello %d" % i] for i in range(3)]


@pytest.mark.parametrize("version", PROTOCOLS)
def test_qos_downgraded_to_subscription(broker, subs, version):
    s = Sub(broker, version, "cli/dg", 1, 1)
    subs.append(s)
    s.wait_subscribed()
    mosquitto_pub(broker, version, "cli/dg", "two", qos=2)
    assert s.finish() == [["cli/dg", "1", "0", "two"]]


@pytest.mark.parametrize("version", PROTOCOLS)
def test_retained_with_r(broker, subs, version):
    mosquitto_pub(broker, version, "cli/ret", "kept", qos=1, retain=True)
    s = Sub(broker, version, "cli/ret", 1, 1)
    subs.append(s)
    assert s.finish() == [["cli/ret", "1", "1", "kept"]]
    # and deleting it with an empty retained message
    mosquitto_pub(broker, version, "cli/ret", "", qos=1, retain=True)
    s = Sub(broker, version, "cli/ret", 1, 1)
    subs.append(s)
    s.wait_subscribed()
    mosquitto_pub(broker, version, "cli/ret", "live", qos=1)
    assert s.finish() == [["cli/ret", "1", "0", "live"]]


@pytest.mark.parametrize("version", PROTOCOLS)
def test_sub_count_option_exits_after_count(broker, subs, version):
    s = Sub(broker, version, "cli/count", 1, 2)
    subs.append(s)
    s.wait_subscribed()
    for i in range(5):
        if s.proc.poll() is not None:
            break
        mosquitto_pub(broker, version, "cli/count", "m%d" % i, qos=1)
    got = s.finish()
    assert [x[3] for x in got] == ["m0", "m1"]
