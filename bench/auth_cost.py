#!/usr/bin/python3
"""What authentication and an ACL cost on the publish path: QoS 1 fan-in (10 publishers ->
1 subscriber on bench/#) against HarborMQ and Debian's Mosquitto, each without auth and with
a password file plus an ACL of 12 rules (11 that do not match the publishers first, then the
one that allows them), in the same run. Reports broker CPU per delivered message (utime +
stime from /proc) and the ratios. Load comes from `harbormq bench pub|sub`.

    /usr/bin/python3 bench/auth_cost.py [--harbormq build/harbormq] [--count 20000] [--runs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (free_port, proc_cpu_s, wait_port, terminate)

PUBLISHERS = 10


def wait_port(port, proc):
    if not compare.wait_port(port, proc):
        raise SystemExit("broker did not listen on %d (exit code %s)" % (port, proc.poll()))


def harbormq_conf(d, port, auth):
    text = ('listeners.tcp { bind = "127.0.0.1:%d" }\nsystem { num_taskq_thread = 2 }\n'
            "mqtt { max_inflight_window = 65535, max_mqueue_len = 0 }\n" % port)
    if auth:
        rules = ['{"permit": "deny", "username": "other%d", "action": "publish"}' % i
                 for i in range(6)]
        rules += ['{"permit": "deny", "action": "publish", "topics": ["secret/%d/#"]}' % i
                  for i in range(5)]
        rules += ['{"permit": "allow", "username": "bench", "topics": ["bench/#"]}',
                  '{"permit": "deny"}']
        text += ('auth {\n allow_anonymous = false\n password { "bench": "pw" }\n'
                 " acl { rules = [\n  %s\n ] }\n}\n" % "\n  ".join(rules))
    path = os.path.join(d, "harbormq.conf")
    open(path, "w").write(text)
    return path


def mosquitto_conf(d, port, auth):
    lines = ["per_listener_settings false", "user root", "listener %d 127.0.0.1" % port,
             "persistence false",
             "max_inflight_messages 0", "max_queued_messages 0", "log_dest none"]
    if auth:
        pw = os.path.join(d, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "bench", "pw"], check=True,
                       capture_output=True)
        acl = os.path.join(d, "acl")
        rules = ["user other%d\ntopic deny #" % i for i in range(6)]
        rules += ["pattern deny secret/%d/#" % i for i in range(5)]
        rules += ["user bench\ntopic readwrite bench/#"]
        open(acl, "w").write("\n".join(rules) + "\n")
        lines += ["allow_anonymous false", "password_file " + pw, "acl_file " + acl]
    else:
        lines += ["allow_anonymous true"]
    path = os.path.join(d, "mosquitto.conf")
    open(path, "w").write("\n".join(lines) + "\n")
    return path


def run_once(harbormq, broker, auth, count):
    with tempfile.TemporaryDirectory() as d:
        port = compare.free_port()
        if broker == "harbormq":
            cmd = [harbormq, "start", "--conf", harbormq_conf(d, port, auth), "--pid-file",
                   os.path.join(d, "pid")]
        else:
            cmd = ["/usr/sbin/mosquitto", "-c", mosquitto_conf(d, port, auth)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            cred = ["-u", "bench", "-P", "pw"]
            total = count * PUBLISHERS
            ready = os.path.join(d, "ready")
            sub = subprocess.Popen([harbormq, "bench", "sub", "-p", str(port), "-t", "bench/#",
                                    "-q", "1", "-L", str(total), "--quiet", "--ready-file",
                                    ready, "--timeout", "60"] + cred,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while not os.path.exists(ready):
                if sub.poll() is not None:
                    raise SystemExit("subscriber failed: %s" % sub.stderr.read().decode())
                time.sleep(0.02)
            cpu0 = compare.proc_cpu_s(proc.pid)
            t0 = time.monotonic()
            pub = subprocess.run([harbormq, "bench", "pub", "-p", str(port), "-c",
                                  str(PUBLISHERS), "-q", "1", "-L", str(count), "-s", "64",
                                  "--quiet"] + cred, capture_output=True, timeout=300)
            if pub.returncode != 0:
                raise SystemExit("publishers failed: %s" % pub.stderr.decode())
            sub.wait(120)
            if sub.returncode != 0:
                raise SystemExit("subscriber got fewer than %d: %s" % (
                    total, sub.stderr.read().decode()))
            elapsed = time.monotonic() - t0
            cpu = compare.proc_cpu_s(proc.pid) - cpu0
            return cpu / total * 1e6, total / elapsed
        finally:
            compare.terminate(proc, 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--harbormq", default=os.path.join(HERE, "..", "build", "harbormq"))
    ap.add_argument("--count", type=int, default=20000, help="messages per publisher")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    results = {}
    for r in range(a.runs):
        order = [("harbormq", False), ("harbormq", True), ("mosquitto", False),
                 ("mosquitto", True)]
        if r % 2:
            order.reverse()
        for broker, auth in order:
            results.setdefault((broker, auth), []).append(
                run_once(a.harbormq, broker, auth, a.count))
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in results.items()}
    print("| broker | auth + ACL | broker CPU µs/msg | delivered msg/s |")
    print("|---|---|---|---|")
    for (broker, auth), (us, rate) in med.items():
        print("| %s | %s | %.2f | %.0f |" % (broker, "yes" if auth else "no", us, rate))
    h0, h1 = med[("harbormq", False)][0], med[("harbormq", True)][0]
    m0, m1 = med[("mosquitto", False)][0], med[("mosquitto", True)][0]
    print("\nHarborMQ: ACL costs %.2f µs/msg (%+.0f%%); Mosquitto: %.2f µs/msg (%+.0f%%)."
          % (h1 - h0, (h1 / h0 - 1) * 100, m1 - m0, (m1 / m0 - 1) * 100))
    print("With auth + ACL, HarborMQ / Mosquitto CPU per message: %.2fx" % (h1 / m1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
