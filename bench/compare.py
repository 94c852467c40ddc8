#!/usr/bin/python3
"""Side-by-side benchmark: HarborMQ against Debian's Mosquitto on this machine.

Starts each broker on a free loopback port with equivalent settings, runs the same
scenarios against each (alternating which broker goes first, --runs times), and writes
the medians and the HarborMQ / Mosquitto ratios to bench/results/latest.md (+ .json, .png).

The load comes from `harbormq bench pub|sub|conn` (the same binary) and, for conn-10k-raw,
from bench/raw_connect.c (plain sockets, not our client code). Broker CPU seconds
(utime+stime from /proc/PID/stat) and peak RSS (VmHWM) are read around every run.

    /usr/bin/python3 bench/compare.py                 # full run (make bench)
    /usr/bin/python3 bench/compare.py --smoke         # every scenario for 1 s, 1 run -> bench/results/smoke.*
    /usr/bin/python3 bench/compare.py --scenarios fanin-q0,conn-10k --runs 5
    /usr/bin/python3 bench/compare.py --harbormq build-bench/harbormq --smoke --scenarios slow-sub-q1
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
MOSQUITTO = "/usr/sbin/mosquitto"

# name -> scenario definition. Sizes are the full-run values; --smoke scales them down.
SCENARIOS = {
    "fanin-q0": dict(kind="pubsub", qos=0, pubs=10, subs=1, pub_topic="bench/%i", sub_topic="bench/#",
                     size=100, rate=0, fan=1, desc="10 pub -> 1 sub on bench/#, 100 B, unlimited"),
    "fanin-q1": dict(kind="pubsub", qos=1, pubs=10, subs=1, pub_topic="bench/%i", sub_topic="bench/#",
                     size=100, rate=0, fan=1, desc="10 pub -> 1 sub on bench/#, 100 B, unlimited, inflight 64"),
    "p2p-q1": dict(kind="pubsub", qos=1, pubs=200, subs=200, pub_topic="bench/p2p/%i", sub_topic="bench/p2p/%i",
                   size=100, rate=100, fan=1, desc="200 pub -> 200 sub, one topic each, 100 msg/s each"),
    "fanout-q0": dict(kind="pubsub", qos=0, pubs=1, subs=200, pub_topic="bench/fanout", sub_topic="bench/fanout",
                      size=16, rate=1000, fan=200, desc="1 pub -> 200 sub on one topic, 16 B, 1000 msg/s"),
    "fanout-q1": dict(kind="pubsub", qos=1, pubs=1, subs=200, pub_topic="bench/fanout", sub_topic="bench/fanout",
                      size=16, rate=1000, fan=200, desc="1 pub -> 200 sub on one topic, 16 B, 1000 msg/s"),
    # The slow-sub pair keeps each broker's default queue and inflight limits (HarborMQ:
    # max_mqueue_len = 2048; Mosquitto: max_queued_messages 1000, max_inflight_messages 20).
    "slow-sub-q0": dict(kind="slowsub", qos=0, pubs=10, size=100, slow_rate=2000, fast_rate=5000,
                        default_limits=True,
                        desc="fan-in as fanin-q0 to 1 sub reading at most 2,000 msg/s, plus 1 pub -> 1 fast sub "
                             "at 5,000 msg/s on another topic; default queue limits"),
    "slow-sub-q1": dict(kind="slowsub", qos=1, pubs=10, size=100, slow_rate=2000, fast_rate=5000,
                        default_limits=True,
                        desc="the same at QoS 1 (inflight 64 per publisher)"),
    "conn-10k": dict(kind="conn", conns=10000, desc="10,000 connections by `harbormq bench conn`, unlimited rate "
                                                    "(256 pending)"),
    "conn-10k-raw": dict(kind="rawconn", conns=10000, concurrency=64,
                         desc="10,000 connections by bench/raw_connect.c (plain sockets, hand-built CONNECT, "
                              "no TCP_NODELAY), 64 pending"),
    "persist-q1": dict(kind="persist", store=True, pubs=10, count=500000, size=100, inflight=64,
                       desc="QoS 1 to 1 offline persistent subscriber, then drain; store on, inflight 64"),
    "persist-q1-full": dict(kind="persist", store=True, synchronous="full", pubs=10, count=500000, size=100,
                            inflight=64,
                            desc="as persist-q1 with HarborMQ's `sqlite { synchronous = full }` (survives power "
                                 "loss); Mosquitto unchanged (`persistence true`)"),
    "persist-q1-nostore": dict(kind="persist", store=False, pubs=10, count=500000, size=100, inflight=64,
                               desc="same, store off (memory only)"),
    "persist-q1-w1000": dict(kind="persist", store=True, pubs=10, count=500000, size=100, inflight=1000,
                             desc="as persist-q1 with 1000 messages in flight per publisher"),
    "persist-q1-nostore-w1000": dict(kind="persist", store=False, pubs=10, count=500000, size=100,
                                     inflight=1000, desc="same, store off (memory only)"),
    # Not in the default list (make bench): 10 M messages take many minutes per broker and run.
    # Run it by name; --backlog-count sets the count.
    "backlog": dict(kind="backlog", store=True, pubs=10, count=10_000_000, size=100, inflight=64, default=False,
                    desc="QoS 1 messages of 100 B (10 publishers, inflight 64; count in the table) to 1 offline "
                         "persistent subscriber, store on, then `kill -9` of the broker (Mosquitto: SIGTERM, "
                         "since it writes its store only at shutdown and would restore nothing after kill -9), "
                         "restart on the same data, drain. Not run by default (name it; --backlog-count N)"),
}

# Bridges (issue 13): the broker under test is an edge whose bridge (HarborMQ:
# `bridges.mqtt.cloud`, Mosquitto: `connection cloud` ... `topic bench/# out 1`) forwards to
# a remote Mosquitto started for the run; the subscriber is on the remote.
SCENARIOS.update({
    "bridge-q1": dict(kind="bridge", store=True, pubs=10, size=100, inflight=64, outage=False,
                      desc="10 pub -> edge broker (store on) -> its bridge, QoS 1 (`bench/# out 1`) -> a remote "
                           "Mosquitto -> 1 sub there; 100 B, unlimited; broker CPU and RSS are the edge's"),
    "bridge-outage": dict(kind="bridge", store=True, pubs=10, count=1_000_000, size=100, inflight=64, outage=True,
                          default=False,
                          desc="QoS 1 messages (count in the table) published to the edge while its remote is down "
                               "(the remote's persistent subscriber session waits there), then the remote comes "
                               "back: time from its restart until the subscriber has them all; edge peak RSS. "
                               "Not run by default (name it; --outage-count N)"),
})

# Transports (issue 14): the QoS 1 fan-in of fanin-q1 over TLS (both brokers, one certificate
# made at run time: ECDSA P-256, see make_certificate) and over WebSocket (HarborMQ only:
# Debian's Mosquitto 2.0.11 is built without WebSocket support, so the comparison is with
# HarborMQ's own plain-TCP fanin-q1 run in the same invocation). Short: not in the default set.
SCENARIOS.update({
    "fanin-q1-tls": dict(SCENARIOS["fanin-q1"], transport="tls", default=False,
                         desc="as fanin-q1 over TLS (TLS 1.3, ECDSA P-256 certificate made at run time; the "
                              "clients verify it against its CA). Not run by default (name it)"),
    "fanin-q1-ws": dict(SCENARIOS["fanin-q1"], transport="ws", brokers=("harbormq",), vs_own="fanin-q1",
                        default=False,
                        desc="as fanin-q1 over WebSocket (listeners.ws, path /mqtt), HarborMQ only (Debian's "
                             "Mosquitto 2.0.11 has no WebSocket listener): its ratios are to HarborMQ's own "
                             "plain-TCP fanin-q1 of the same invocation. Not run by default (name it)"),
})

WS_PATH = "/mqtt"

SMOKE_SCALE = {"pubs": 10, "subs": 10, "conns": 200, "count": 1000}


def bridge_settings(kind, remote_port, tag):
    """The edge's bridge to 127.0.0.1:remote_port, forwarding bench/# at QoS 1, reconnecting
    within about a second or two; as lines of the broker's own config."""
    if kind == "mosquitto":
        return ["connection cloud", f"address 127.0.0.1:{remote_port}", "topic bench/# out 1",
                "cleansession false", f"clientid edge-{tag}", "restart_timeout 1 2",
                "bridge_protocol_version mqttv311", "try_private false"]
    return ["bridges.mqtt.cloud {", f'  server = "mqtt-tcp://127.0.0.1:{remote_port}"', "  proto_ver = 4",
            f'  clientid = "edge-{tag}"', "  clean_start = false", "  backoff_max = 2s",
            '  forwards = [ { local_topic = "bench/#", qos = 1 } ]', "}",
            "bridges.mqtt.cache { disk_cache_size = 0 }"]


def net_counters():
    """TcpExt/Tcp counters of this network namespace (ListenOverflows, TCPSynRetrans...)."""
    out = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for head, vals in zip(lines[0::2], lines[1::2]):
            keys, values = head.split(), vals.split()
            for k, v in zip(keys[1:], values[1:]):
                out[keys[0].rstrip(":") + k] = int(v)
    return out


def find_raw_connect(harbormq_bin, workdir):
    """bench/raw_connect.c built next to harbormq (bench/CMakeLists.txt), else compiled here."""
    src = os.path.join(ROOT, "bench", "raw_connect.c")
    beside = os.path.join(os.path.dirname(os.path.abspath(harbormq_bin)), "raw_connect")
    if os.path.exists(beside) and os.path.getmtime(beside) >= os.path.getmtime(src):
        return beside
    out = os.path.join(workdir, "raw_connect")
    if not os.path.exists(out):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise RuntimeError("no C compiler to build bench/raw_connect.c")
        subprocess.run([cc, "-O2", "-o", out, src], check=True, capture_output=True, text=True)
    return out


def make_certificate(workdir):
    """A CA and a server certificate for 127.0.0.1 that it signed (ECDSA P-256, 30 days), made
    with the openssl command line: (ca, cert, key) file names."""
    def openssl(*args):
        r = subprocess.run(["openssl", *args], cwd=workdir, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca, ca_key = os.path.join(workdir, "ca.pem"), os.path.join(workdir, "ca.key")
    cert, key = os.path.join(workdir, "server.pem"), os.path.join(workdir, "server.key")
    csr, ext = os.path.join(workdir, "server.csr"), os.path.join(workdir, "server.ext")
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "30", "-subj", "/CN=bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "1", "-days", "30",
            "-extfile", ext, "-out", cert)
    return ca, cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_listening(port, proc, timeout):
    """Seconds until a TCP connect to port succeeds (polled every 10 ms), None if proc exits or
    timeout passes first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.monotonic() - t0
        except OSError:
            time.sleep(0.01)
    return None


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    except OSError:
        return 0.0


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def terminate(proc, timeout=10):
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Broker:
    """One broker for one run: one process, or several on the same port, config and data
    directory when a scenario kills and restarts it (end, restart)."""

    def __init__(self, kind, harbormq_bin, workdir, persistence, default_limits=False, synchronous=None,
                 extra=(), transport="tcp", tls_files=None):
        """transport "tls" (tls_files = (ca, cert, key)) or "ws": self.port is that listener's
        (HarborMQ keeps its TCP listener on another free port, unused)."""
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir)
        self.proc = None
        self.log = None
        # CPU seconds and peak RSS of the processes already killed, so cpu_s() and hwm_kb()
        # cover the whole run.
        self.dead_cpu_s = 0.0
        self.dead_hwm_kb = 0
        if kind == "mosquitto":
            self.conf = os.path.join(self.dir, "mosquitto.conf")
            limits = [] if default_limits else [
                "max_queued_messages 0",
                "max_queued_bytes 0",
                # 65535 = HarborMQ's max_inflight_window. 0 ("unlimited") stalls QoS 1 delivery
                # in Mosquitto 2.0.11: messages stay queued until the client sends something.
                "max_inflight_messages 65535",
                "max_inflight_bytes 0",
            ]
            tls = [f"cafile {tls_files[0]}", f"certfile {tls_files[1]}", f"keyfile {tls_files[2]}"] \
                if transport == "tls" else []
            self.settings = "\n".join([
                f"listener {self.port} 127.0.0.1",
                *tls,
                "allow_anonymous true",
                # Run as root stays root: otherwise Mosquitto drops to user mosquitto and cannot
                # write its store in our temporary directory (it logs the failure and loses it).
                "user root",
                "max_connections -1",
                *limits,
                "set_tcp_nodelay true",
                f"persistence {'true' if persistence else 'false'}",
                f"persistence_location {self.dir}/",
                "log_dest stderr",
                "log_type error",
                *extra,
            ]) + "\n"
            self.cmd = [MOSQUITTO, "-c", self.conf]
        else:
            self.conf = os.path.join(self.dir, "harbormq.conf")
            # log level error, as Mosquitto's log_type error above; own pid file per run.
            if transport == "tcp":
                lines = [f'listeners.tcp {{ bind = "127.0.0.1:{self.port}" }}']
            else:
                lines = [f'listeners.tcp {{ bind = "127.0.0.1:{free_port()}" }}']
            if transport == "tls":
                lines.append(f'listeners.ssl {{ bind = "127.0.0.1:{self.port}", certfile = "{tls_files[1]}", '
                             f'keyfile = "{tls_files[2]}" }}')
            elif transport == "ws":
                lines.append(f'listeners.ws {{ bind = "127.0.0.1:{self.port}{WS_PATH}" }}')
            if not default_limits:
                lines.append("mqtt { max_mqueue_len = 0, max_inflight_window = 65535 }")
            lines += [f'system {{ pid_file = "{self.dir}/harbormq.pid" }}', "log { level = error }"]
            if persistence:
                # disk_cache_size = 0: no message bound, as Mosquitto (default 102,400 would
                # refuse part of a 500,000-message run).
                sync = f", synchronous = {synchronous}" if synchronous else ""
                lines.append(f'sqlite {{ mounted_file_path = "{self.dir}", disk_cache_size = 0{sync} }}')
            lines += list(extra)
            self.settings = "\n".join(lines) + "\n"
            self.cmd = [harbormq_bin, "start", "--conf", self.conf]
        with open(self.conf, "w") as f:
            f.write(self.settings)

    def start(self):
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_nofile)
        if not wait_port(self.port, self.proc):
            self.stop()
            with open(os.path.join(self.dir, "broker.log")) as f:
                tail = f.read()[-500:]
            raise RuntimeError(f"{self.kind} did not start: {tail.strip()}")
        return self

    def end(self, sig, timeout=1800):
        """Send `sig` and wait for the process to exit, after reading its CPU and peak RSS:
        SIGKILL (no shutdown save, no final commit) or SIGTERM (the broker saves and exits)."""
        self.dead_cpu_s += proc_cpu_s(self.proc.pid)
        self.dead_hwm_kb = max(self.dead_hwm_kb, proc_status_kb(self.proc.pid, "VmHWM"))
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)

    def restart(self, timeout=600):
        """Start the broker again on the same config, port and data; returns the seconds from
        Popen to the first successful TCP connect."""
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_nofile)
        listen_s = wait_listening(self.port, self.proc, timeout)
        if listen_s is None:
            self.stop()
            with open(os.path.join(self.dir, "broker.log")) as f:
                tail = f.read()[-500:]
            raise RuntimeError(f"{self.kind} did not restart: {tail.strip()}")
        return listen_s

    def cpu_s(self):
        """utime+stime of every process of this broker so far."""
        return self.dead_cpu_s + proc_cpu_s(self.proc.pid)

    def rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmRSS")

    def hwm_kb(self):
        """Peak RSS: the highest VmHWM of this broker's processes."""
        return max(self.dead_hwm_kb, proc_status_kb(self.proc.pid, "VmHWM"))

    def stop(self):
        if self.proc:
            terminate(self.proc)
        if self.log:
            self.log.close()
            self.log = None


class Runner:
    def __init__(self, args):
        self.args = args
        self.tools = args.tools or args.harbormq
        self.workdir = tempfile.mkdtemp(prefix="harbormq-bench-")
        self.tls_files = None  # (ca, cert, key), made on first use
        self.transport_opts = []  # the scenario's: --cafile CA or --ws PATH

    def bench(self, mode, port, opts, json_path, wait=True, timeout=600):
        cmd = [self.tools, "bench", mode, "-p", str(port), "--json", json_path, "--quiet"] + \
            self.transport_opts + opts
        if self.args.verbose:
            print("   $", " ".join(cmd), file=sys.stderr)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not wait:
            return proc
        return self.finish(proc, json_path, timeout)

    def finish(self, proc, json_path, timeout=600, ok_codes=(0,)):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"bench timed out: {err[-300:]}")
        if proc.returncode not in ok_codes or not os.path.exists(json_path):
            raise RuntimeError(f"bench exited {proc.returncode}: {(err or out)[-300:].strip()}")
        with open(json_path) as f:
            return json.load(f)

    def wait_file(self, path, proc, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                return
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise RuntimeError(f"bench exited early: {err[-300:].strip()}")
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for clients to connect")

    def tmp(self, name):
        return os.path.join(self.workdir, f"{name}-{time.monotonic_ns()}")

    # ---- scenarios: each returns a dict of metrics ----
    def run_pubsub(self, sc, broker, duration):
        p = broker.port
        sub_json, pub_json, ready = self.tmp("sub.json"), self.tmp("pub.json"), self.tmp("ready")
        sub = self.bench("sub", p, ["-c", str(sc["subs"]), "-t", sc["sub_topic"], "-q", str(sc["qos"]),
                                    "--idle", "3", "--duration", str(duration + 60),
                                    "--ready-file", ready], sub_json, wait=False)
        self.wait_file(ready, sub)
        opts = ["-c", str(sc["pubs"]), "-t", sc["pub_topic"], "-q", str(sc["qos"]), "-s", str(sc["size"]),
                "--duration", str(duration), "--inflight", "64"]
        if sc["rate"]:
            opts += ["--rate", str(sc["rate"])]
        pub = self.bench("pub", p, opts, pub_json)
        sub = self.finish(sub, sub_json, timeout=duration + 120)
        accepted = pub["acked"] - pub["rejected"] if sc["qos"] > 0 else pub["sent"]
        expected = accepted * sc["fan"]
        delivered = sub["unique"]
        window = (sub["last_receive_ns"] - pub["start_ns"]) / 1e9 if sub["last_receive_ns"] else 0
        return {
            "accepted": accepted,
            "accepted_per_s": accepted / pub["run_s"] if pub["run_s"] else 0,
            "delivered": delivered,
            "delivered_per_s": delivered / window if window > 0 else 0,
            "dropped": max(0, expected - delivered),
            "gaps": sub["gaps"],
            "duplicates": sub["duplicates"],
            "out_of_order": sub["out_of_order"],
            "p50_ms": sub["latency_ms"]["p50"],
            "p99_ms": sub["latency_ms"]["p99"],
            "p999_ms": sub["latency_ms"]["p999"],
            "max_ms": sub["latency_ms"]["max"],
            "errors": pub["error_count"] + sub["error_count"],
        }

    def run_conn(self, sc, broker, duration):
        conn_json, ready = self.tmp("conn.json"), self.tmp("ready")
        base_kb, net0 = broker.rss_kb(), net_counters()
        proc = self.bench("conn", broker.port, ["-c", str(sc["conns"]), "--max-pending", "256",
                                                "--duration", str(max(1, duration)), "--ready-file", ready],
                          conn_json, wait=False)
        self.wait_file(ready, proc, timeout=300)
        time.sleep(0.5)
        held_kb, net1 = broker.rss_kb(), net_counters()
        res = self.finish(proc, conn_json)
        n = max(1, res["connected"])
        return {
            **syn_drops(net0, net1),
            "connected": res["connected"],
            "connect_failed": res["connect_failed"],
            "conn_per_s": res["connect_rate"],
            "connect_p50_ms": res["connect_time_ms"]["p50"],
            "connect_p99_ms": res["connect_time_ms"]["p99"],
            "rss_per_conn_kb": (held_kb - base_kb) / n,
            "errors": res["error_count"],
        }

    def run_rawconn(self, sc, broker, duration):
        exe = find_raw_connect(self.tools, self.workdir)
        out, ready = self.tmp("raw.json"), self.tmp("ready")
        base_kb, net0 = broker.rss_kb(), net_counters()
        cmd = [exe, "-p", str(broker.port), "-c", str(sc["conns"]), "--concurrency", str(sc["concurrency"]),
               "--hold", str(max(2, duration)), "--ready-file", ready, "--json", out]
        if self.args.verbose:
            print("   $", " ".join(cmd), file=sys.stderr)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_file(ready, proc, timeout=300)
        time.sleep(0.5)
        held_kb, net1 = broker.rss_kb(), net_counters()
        res = self.finish(proc, out, timeout=300)
        n = max(1, res["connected"])
        return {
            **syn_drops(net0, net1),
            "connected": res["connected"],
            "connect_failed": res["failed"],
            "conn_per_s": res["conn_per_s"],
            "connect_p50_ms": res["connect_ms"]["p50"],
            "connect_p99_ms": res["connect_ms"]["p99"],
            "rss_per_conn_kb": (held_kb - base_kb) / n,
            "errors": res["failed"],
        }

    def fast_pair(self, sc, port, duration, start_ns_from=None):
        """1 publisher at sc['fast_rate'] -> 1 subscriber on bench/fast; returns (sub, pub) results."""
        q = str(sc["qos"])
        sub_json, pub_json, ready = self.tmp("fast-sub.json"), self.tmp("fast-pub.json"), self.tmp("ready")
        sub = self.bench("sub", port, ["-c", "1", "-i", f"hmq-fast-sub-{port}-%i", "-t", "bench/fast", "-q", q,
                                       "--idle", "2", "--duration", str(duration + 30), "--ready-file", ready],
                         sub_json, wait=False)
        self.wait_file(ready, sub)
        pub = self.bench("pub", port, ["-c", "1", "-n", "1000", "-i", f"hmq-fast-pub-{port}-%i", "-t", "bench/fast",
                                       "-q", q, "-s", str(sc["size"]), "--rate", str(sc["fast_rate"]),
                                       "--duration", str(duration)], pub_json, wait=False)
        return sub, sub_json, pub, pub_json

    def fast_result(self, handles, duration):
        sub, sub_json, pub, pub_json = handles
        pub = self.finish(pub, pub_json, timeout=duration + 120)
        sub = self.finish(sub, sub_json, timeout=duration + 120)
        sent = pub["acked"] - pub["rejected"] if pub["options"].get("qos", 0) else pub["sent"]
        return {"sent": sent, "unique": sub["unique"], "gaps": sub["gaps"],
                "per_s": sub["unique"] / pub["run_s"] if pub["run_s"] else 0,
                "p99_ms": sub["latency_ms"]["p99"]}

    def run_slowsub(self, sc, broker, duration):
        """Fan-in to a paced subscriber next to an unrelated fast pair; the fast pair also runs
        alone first, on the same broker, as the baseline "unaffected" is measured against."""
        p, q = broker.port, str(sc["qos"])
        drain = 10 if self.args.smoke else 30  # the slow subscriber's reading time after the publishers stop
        base = self.fast_result(self.fast_pair(sc, p, duration), duration)
        slow_json, ready = self.tmp("slow-sub.json"), self.tmp("ready")
        slow = self.bench("sub", p, ["-c", "1", "-i", f"hmq-slow-sub-{p}-%i", "-t", "bench/slow/#", "-q", q,
                                     "--rate", str(sc["slow_rate"]), "--idle", "2",
                                     "--duration", str(duration + drain), "--ready-file", ready],
                          slow_json, wait=False)
        self.wait_file(ready, slow)
        fast = self.fast_pair(sc, p, duration)
        fan_json = self.tmp("fan-pub.json")
        # A QoS 1 publisher held back by a slow receiver may give up waiting for acknowledgements
        # (exit code 4): its results are still written and counted.
        fan = self.bench("pub", p, ["-c", str(sc["pubs"]), "-t", "bench/slow/%i", "-q", q, "-s", str(sc["size"]),
                                    "--duration", str(duration), "--inflight", "64"], fan_json, wait=False)
        fan = self.finish(fan, fan_json, timeout=duration + 120, ok_codes=(0, 4))
        fast = self.fast_result(fast, duration)
        slow = self.finish(slow, slow_json, timeout=duration + drain + 60)
        accepted = fan["acked"] - fan["rejected"] if sc["qos"] > 0 else fan["sent"]
        window = (slow["last_receive_ns"] - fan["start_ns"]) / 1e9 if slow["last_receive_ns"] else 0
        return {
            "qos": sc["qos"],
            "accepted": accepted,
            "accepted_per_s": accepted / fan["run_s"] if fan["run_s"] else 0,
            "delivered": slow["unique"] + fast["unique"] + base["unique"],
            "delivered_per_s": slow["unique"] / window if window > 0 else 0,
            "slow_received": slow["unique"],
            "dropped": max(0, accepted - slow["unique"]),
            "gaps": slow["gaps"],
            "duplicates": slow["duplicates"],
            "p50_ms": slow["latency_ms"]["p50"],
            "p99_ms": slow["latency_ms"]["p99"],
            "fast_per_s": fast["per_s"],
            "fast_alone_per_s": base["per_s"],
            "fast_vs_alone": fast["per_s"] / base["per_s"] if base["per_s"] else 0,
            "fast_dropped": max(0, fast["sent"] - fast["unique"]),
            "fast_p99_ms": fast["p99_ms"],
            "fast_alone_p99_ms": base["p99_ms"],
            "pub_ack_timeouts": fan["error_count"],
            "errors": slow["error_count"],
        }

    def run_persist(self, sc, broker, duration):
        p = broker.port
        common = ["-c", "1", "-i", f"hmq-persist-{broker.port}-%i", "--no-clean", "-q", "1", "-t", "bench/persist"]
        self.bench("sub", p, common + ["--subscribe-only"], self.tmp("setup.json"))
        pub = self.bench("pub", p, ["-c", str(sc["pubs"]), "-t", "bench/persist", "-q", "1", "-s", str(sc["size"]),
                                    "-L", str(sc["count"] // sc["pubs"]), "--inflight", str(sc["inflight"]),
                                    "--duration", str(max(duration * 6, 10))], self.tmp("pub.json"))
        drain = self.bench("sub", p, common + ["--no-subscribe", "--idle", "3", "--duration", "300"],
                           self.tmp("drain.json"))
        accepted = pub["acked"] - pub["rejected"]
        return {
            "accepted": accepted,
            "accepted_per_s": accepted / pub["run_s"] if pub["run_s"] else 0,
            "delivered": drain["unique"],
            "delivered_per_s": drain["receive_rate"],
            "dropped": max(0, accepted - drain["unique"]),
            "duplicates": drain["duplicates"],
            "session_present": drain["session_present"],
            "errors": pub["error_count"] + drain["error_count"],
        }

    def run_backlog(self, sc, broker, duration):
        """Queue sc["count"] messages for one offline session, kill the broker, restart it on
        the same data and drain: each phase's time and memory."""
        p = broker.port
        common = ["-c", "1", "-i", f"hmq-backlog-{broker.port}-%i", "--no-clean", "-q", "1", "-t", "bench/backlog"]
        self.bench("sub", p, common + ["--subscribe-only"], self.tmp("setup.json"))
        rss_before_kb = broker.rss_kb()
        pub = self.bench("pub", p, ["-c", str(sc["pubs"]), "-t", "bench/backlog", "-q", "1", "-s", str(sc["size"]),
                                    "-L", str(sc["count"] // sc["pubs"]), "--inflight", str(sc["inflight"]),
                                    "--quiet", "--timeout", "120"], self.tmp("pub.json"), timeout=7200)
        queue_hwm_kb = broker.hwm_kb()
        queued_rss_kb = broker.rss_kb()
        # Mosquitto: SIGTERM, its only save (see the scenario's description).
        broker.end(signal.SIGTERM if broker.kind == "mosquitto" else signal.SIGKILL)
        listen_s = broker.restart(timeout=1800)
        restore_rss_kb = broker.rss_kb()
        drain = self.bench("sub", p, common + ["--no-subscribe", "--idle", "5", "--duration", "3600", "--quiet"],
                           self.tmp("drain.json"), timeout=7200)
        time.sleep(5)  # the broker's idle time: checkpoint, memory given back
        accepted = pub["acked"] - pub["rejected"]
        return {
            "accepted": accepted,
            "accepted_per_s": accepted / pub["run_s"] if pub["run_s"] else 0,
            "rss_before_mb": rss_before_kb / 1024,
            "queue_peak_rss_mb": queue_hwm_kb / 1024,
            "queued_rss_mb": queued_rss_kb / 1024,
            "listen_s": listen_s,
            "restore_rss_mb": restore_rss_kb / 1024,
            "delivered": drain["unique"],
            "delivered_per_s": drain["receive_rate"],
            "drain_peak_rss_mb": proc_status_kb(broker.proc.pid, "VmHWM") / 1024,
            "drained_rss_mb": broker.rss_kb() / 1024,
            "dropped": max(0, accepted - drain["unique"]),
            "duplicates": drain["duplicates"],
            "session_present": drain["session_present"],
            "errors": pub["error_count"] + drain["error_count"],
        }

    def run_bridge(self, sc, broker, duration):
        """The edge `broker` forwards to self.remote (--bridge-remote); the subscriber reads there."""
        remote, rp = self.remote, self.remote.port
        sub_common = ["-c", "1", "-i", f"hmq-remote-sub-{rp}-%i", "-t", "bench/#", "-q", "1"]
        pub_opts = ["-c", str(sc["pubs"]), "-t", "bench/%i", "-q", "1", "-s", str(sc["size"]),
                    "--inflight", str(sc["inflight"])]
        if not sc["outage"]:
            ready = self.tmp("ready")
            sub_json = self.tmp("sub.json")
            sub = self.bench("sub", rp, sub_common + ["--idle", "5", "--duration", str(duration + 120),
                                                      "--ready-file", ready], sub_json, wait=False)
            self.wait_file(ready, sub)
            time.sleep(2)  # the edge's bridge connects (both brokers dial at start)
            cpu0, t0 = broker.cpu_s(), time.monotonic_ns()
            pub = self.bench("pub", broker.port, pub_opts + ["--duration", str(duration)], self.tmp("pub.json"))
            sub = self.finish(sub, sub_json, timeout=duration + 180)
            accepted = pub["acked"] - pub["rejected"]
            window = (sub["last_receive_ns"] - pub["start_ns"]) / 1e9 if sub["last_receive_ns"] else 0
            return {"accepted": accepted, "accepted_per_s": accepted / pub["run_s"] if pub["run_s"] else 0,
                    "delivered": sub["unique"], "delivered_per_s": sub["unique"] / window if window > 0 else 0,
                    "dropped": max(0, accepted - sub["unique"]), "gaps": sub["gaps"],
                    "duplicates": sub["duplicates"], "p50_ms": sub["latency_ms"]["p50"],
                    "p99_ms": sub["latency_ms"]["p99"], "errors": pub["error_count"] + sub["error_count"]}
        # Outage: the remote's subscriber session exists, then the remote goes down.
        self.bench("sub", rp, sub_common + ["--no-clean", "--subscribe-only"], self.tmp("setup.json"))
        remote.end(signal.SIGTERM)  # Mosquitto saves the session at shutdown
        count = self.args.outage_count if not self.args.smoke else sc["count"]
        pub = self.bench("pub", broker.port, pub_opts + ["-L", str(count // sc["pubs"]), "--quiet",
                                                         "--timeout", "120"], self.tmp("pub.json"), timeout=7200)
        queued_hwm_kb = broker.hwm_kb()
        t0 = time.monotonic_ns()
        remote.restart(timeout=600)
        drain = self.bench("sub", rp, sub_common + ["--no-clean", "--no-subscribe", "--idle", "10",
                                                    "--duration", "7200", "--quiet"],
                           self.tmp("drain.json"), timeout=7400)
        accepted = pub["acked"] - pub["rejected"]
        forward_s = (drain["last_receive_ns"] - t0) / 1e9 if drain["last_receive_ns"] else 0
        return {"accepted": accepted, "accepted_per_s": accepted / pub["run_s"] if pub["run_s"] else 0,
                "queue_peak_rss_mb": queued_hwm_kb / 1024,
                "delivered": drain["unique"], "forward_s": forward_s,
                "delivered_per_s": drain["unique"] / forward_s if forward_s > 0 else 0,
                "dropped": max(0, accepted - drain["unique"]), "duplicates": drain["duplicates"],
                "errors": pub["error_count"] + drain["error_count"]}

    def run_one(self, name, sc, kind, duration):
        persistence = sc.get("store", False)
        transport = sc.get("transport", "tcp")
        if transport == "tls" and not self.tls_files:
            self.tls_files = make_certificate(self.workdir)
        self.transport_opts = {"tcp": [], "tls": ["--cafile", self.tls_files[0] if self.tls_files else ""],
                               "ws": ["--ws", WS_PATH]}[transport]
        extra = []
        self.remote = None
        if sc["kind"] == "bridge":
            self.remote = Broker(self.args.bridge_remote, self.args.harbormq, self.workdir, True).start()
            extra = bridge_settings(kind, self.remote.port, f"{self.remote.port}")
        try:
            broker = Broker(kind, self.args.harbormq, self.workdir, persistence, sc.get("default_limits", False),
                            sc.get("synchronous"), extra, transport, self.tls_files).start()
        except Exception:
            if self.remote:
                self.remote.stop()
            raise
        try:
            return self.run_started(sc, broker, duration)
        finally:
            broker.stop()
            if self.remote:
                self.remote.stop()

    def run_started(self, sc, broker, duration):
        cpu0 = broker.cpu_s()
        fn = {"pubsub": self.run_pubsub, "conn": self.run_conn, "persist": self.run_persist,
              "slowsub": self.run_slowsub, "rawconn": self.run_rawconn, "backlog": self.run_backlog,
              "bridge": self.run_bridge}[sc["kind"]]
        m = fn(sc, broker, duration)
        cpu = broker.cpu_s() - cpu0
        m["broker_cpu_s"] = cpu
        m["broker_peak_rss_mb"] = broker.hwm_kb() / 1024
        if m.get("delivered"):
            m["cpu_us_per_msg"] = cpu * 1e6 / m["delivered"]
        return m, broker.settings


def syn_drops(before, after):
    """Connection attempts the kernel dropped because the broker's accept queue (its listen
    backlog) was full, and the SYNs clients had to resend (1 s, 3 s... later). Counted for the
    whole network namespace: other traffic on the machine adds to them."""
    d = {k: after.get(k, 0) - before.get(k, 0) for k in ("TcpExtListenOverflows", "TcpExtTCPSynRetrans")}
    return {"listen_overflows": d["TcpExtListenOverflows"], "syn_retrans": d["TcpExtTCPSynRetrans"]}


def scaled(sc, smoke):
    sc = dict(sc)
    if smoke:
        for k, v in SMOKE_SCALE.items():
            if k in sc:
                sc[k] = min(sc[k], v)
        if sc.get("fan", 1) > 1:
            sc["fan"] = sc["subs"]
    return sc


MAIN_METRIC = {"pubsub": "delivered_per_s", "conn": "conn_per_s", "persist": "delivered_per_s",
               "slowsub": "delivered_per_s", "rawconn": "conn_per_s", "backlog": "delivered_per_s",
               "bridge": "delivered_per_s"}
BACKLOG_COLUMNS = [
    ("accepted", "messages", "{:,.0f}"),
    ("accepted_per_s", "accepted/s", "{:,.0f}"),
    ("queue_peak_rss_mb", "peak RSS queuing MB", "{:.1f}"),
    ("listen_s", "start to listening s", "{:.2f}"),
    ("restore_rss_mb", "RSS after restore MB", "{:.1f}"),
    ("delivered_per_s", "drain msg/s", "{:,.0f}"),
    ("drain_peak_rss_mb", "peak RSS draining MB", "{:.1f}"),
    ("rss_before_mb", "RSS before MB", "{:.1f}"),
    ("drained_rss_mb", "RSS after drain MB", "{:.1f}"),
    ("dropped", "dropped", "{:,.0f}"),
    ("duplicates", "dup", "{:,.0f}"),
]
OUTAGE_COLUMNS = [
    ("accepted", "messages", "{:,.0f}"),
    ("accepted_per_s", "accepted/s (remote down)", "{:,.0f}"),
    ("queue_peak_rss_mb", "peak RSS queuing MB", "{:.1f}"),
    ("forward_s", "remote back to all forwarded s", "{:.1f}"),
    ("delivered_per_s", "forwarded msg/s", "{:,.0f}"),
    ("broker_peak_rss_mb", "peak RSS MB", "{:.1f}"),
    ("cpu_us_per_msg", "edge CPU us/msg", "{:.2f}"),
    ("dropped", "dropped", "{:,.0f}"),
    ("duplicates", "dup", "{:,.0f}"),
]
COLUMNS = [
    ("accepted_per_s", "accepted/s", "{:,.0f}"),
    ("delivered_per_s", "delivered/s", "{:,.0f}"),
    ("dropped", "dropped", "{:,.0f}"),
    ("gaps", "gaps", "{:,.0f}"),
    ("duplicates", "dup", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("conn_per_s", "conn/s", "{:,.0f}"),
    ("rss_per_conn_kb", "KiB/conn", "{:.2f}"),
    ("listen_overflows", "SYN drops", "{:,.0f}"),
    ("broker_cpu_s", "CPU s", "{:.2f}"),
    ("cpu_us_per_msg", "CPU us/msg", "{:.2f}"),
    ("broker_peak_rss_mb", "peak RSS MB", "{:.1f}"),
]
SLOW_COLUMNS = [
    ("accepted_per_s", "fan-in accepted/s", "{:,.0f}"),
    ("slow_received", "slow: received", "{:,.0f}"),
    ("delivered_per_s", "slow: msg/s", "{:,.0f}"),
    ("dropped", "slow: dropped", "{:,.0f}"),
    ("gaps", "slow: gaps", "{:,.0f}"),
    ("duplicates", "slow: dup", "{:,.0f}"),
    ("fast_alone_per_s", "fast alone msg/s", "{:,.0f}"),
    ("fast_per_s", "fast msg/s", "{:,.0f}"),
    ("fast_vs_alone", "fast / alone", "{:.3f}"),
    ("fast_dropped", "fast: dropped", "{:,.0f}"),
    ("fast_alone_p99_ms", "fast alone p99 ms", "{:.2f}"),
    ("fast_p99_ms", "fast p99 ms", "{:.2f}"),
    ("broker_peak_rss_mb", "peak RSS MB", "{:.1f}"),
]


def median_metrics(runs):
    keys = set().union(*[r.keys() for r in runs]) if runs else set()
    return {k: statistics.median([r[k] for r in runs if k in r]) for k in keys}


def fmt(v, f):
    return "-" if v is None else f.format(v)


def fmt_ratio(h, m, f):
    """HarborMQ's value with its ratio to Mosquitto's in the same run: "1,234 (2.50x)"."""
    text = fmt(h, f)
    if h is None or m is None:
        return text
    if m == 0:
        return text if h == 0 else f"{text} (M: 0)"
    return f"{text} ({h / m:.2f}x)"


def table(results, columns, names):
    head = ["scenario", "broker"] + [c[1] for c in columns]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        per_broker = results[name]
        med = {b: median_metrics(r) for b, r in per_broker.items() if r}
        mos = med.get("mosquitto", {})
        label = {"harbormq": "harbormq", "mosquitto": "mosquitto"}
        own = SCENARIOS[name].get("vs_own")
        if own and "mosquitto" not in per_broker:
            # No Mosquitto figure (fanin-q1-ws): the ratios are to HarborMQ's own run of `own`.
            mos = median_metrics((results.get(own) or {}).get("harbormq") or [])
            label["harbormq"] = f"harbormq (ratios: to its own {own})"
        for b in ("harbormq", "mosquitto"):
            if b not in per_broker:
                continue
            m = med.get(b)
            if not m:
                row = [name, label[b]] + ["n/a"] * len(columns)
            elif b == "harbormq":
                row = [name, label[b]] + [fmt_ratio(m.get(k), mos.get(k), f) for k, _, f in columns]
            else:
                row = [name, b] + [fmt(m.get(k), f) for k, _, f in columns]
            out.append("| " + " | ".join(row) + " |")
    return out


def machine_info():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = proc_status_kb("self", "VmRSS")
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {mem} MiB RAM, Linux {platform.release()}"


def mosquitto_version():
    try:
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=5).stdout
        return out.splitlines()[0].strip()
    except Exception:
        return "mosquitto"


def write_report(args, results, settings, errors, out_dir, duration, runs, name):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# HarborMQ vs Mosquitto — {now}", "",
             f"Machine: {machine_info()}  ",
             f"Brokers: HarborMQ ({args.harbormq}), {mosquitto_version()}  ",
             f"Command: `/usr/bin/python3 bench/compare.py {' '.join(sys.argv[1:])}`  ",
             f"Each value is the median of {runs} run(s) of {duration} s; brokers alternate which goes first. "
             "Every HarborMQ figure is followed by its ratio to Mosquitto's in the same run (H/M; "
             "\"M: 0\" where Mosquitto's is zero). "
             "accepted/s = messages acknowledged (QoS 1) or written (QoS 0) by the publishers; "
             "delivered/s = distinct messages received by the subscribers; dropped = expected deliveries "
             "(accepted x subscribers per message) minus distinct deliveries; gaps = sequence numbers below "
             "each publisher's highest received that never arrived (lost in the middle of a stream); "
             "SYN drops = connection attempts the kernel refused because the broker's listen backlog was full "
             "(the client resends the SYN 1 s later). Broker CPU = utime+stime of the broker process during the "
             "scenario, per delivered message in CPU us/msg; peak RSS = VmHWM.", ""]
    if args.smoke:
        lines += ["**Smoke run** (1 s, few clients): checks that the scenarios work; the numbers mean nothing.", ""]
    names = list(results)
    lines += table(results, COLUMNS, names)
    lines += ["", "The main figure is delivered/s (conn-10k and conn-10k-raw: connections per second).", ""]
    backlog = [n for n in names if SCENARIOS[n]["kind"] == "backlog"]
    if backlog:
        lines += ["## Backlog: queue, kill, restart, drain", "",
                  "Peak RSS queuing = VmHWM of the first process; start to listening = from exec of the restarted "
                  "broker to its first accepted TCP connection; RSS after restore = at that moment; peak RSS "
                  "draining = VmHWM of the restarted process; RSS before = after the subscriber's setup, before "
                  "any message; RSS after drain = 5 s after the drain ended (idle time in which the broker gives memory back).", ""]
        lines += table(results, BACKLOG_COLUMNS, backlog) + [""]
    outage = [n for n in names if SCENARIOS[n].get("outage")]
    if outage:
        lines += ["## Bridge outage: cache at the edge, then forward", "",
                  "The remote Mosquitto is stopped (its subscriber's persistent session saved), the messages are "
                  "published to the edge, then the remote is started again: \"remote back to all forwarded\" is "
                  "from its restart to the subscriber's last message (the remote's own work included, the same "
                  "for both edges). Peak RSS queuing = the edge's VmHWM before the remote came back.", ""]
        lines += table(results, OUTAGE_COLUMNS, outage) + [""]
    names = [n for n in names if SCENARIOS[n]["kind"] != "backlog"]
    slow = [n for n in names if SCENARIOS[n]["kind"] == "slowsub"]
    if slow:
        lines += ["## Slow subscriber next to a fast one", "",
                  "The slow subscriber reads at most `--rate` messages/s (`harbormq bench sub --rate`: unread data "
                  "stays in its socket, so TCP backpressure reaches the broker); the fast pair (1 publisher at a "
                  "fixed rate -> 1 subscriber on another topic) runs alone first (\"alone\"), then next to the "
                  "fan-in, on the same broker process. \"fast / alone\" = 1.000 means unaffected. Slow dropped = "
                  "accepted minus received by the end of the drain time (includes what was still queued); "
                  "slow gaps = lost in the middle.", ""]
        lines += table(results, SLOW_COLUMNS, slow) + [""]
    lines += transport_lines(results)
    # Store on / store off: what durability costs each broker in accepted/s (issue 4's target).
    pairs = [(on, on.replace("persist-q1", "persist-q1-nostore")) for on in results
             if on.startswith("persist-q1") and "nostore" not in on]
    pair_lines = []
    for on, off in pairs:
        if off not in results:
            continue
        for b in ("harbormq", "mosquitto"):
            a = median_metrics(results[on].get(b) or [])
            z = median_metrics(results[off].get(b) or [])
            if a.get("accepted_per_s") and z.get("accepted_per_s"):
                pair_lines.append(f"- {b}, `{on}` / `{off}` accepted/s: {a['accepted_per_s']:,.0f} / "
                                  f"{z['accepted_per_s']:,.0f} = **{a['accepted_per_s'] / z['accepted_per_s']:.2f}**")
    if pair_lines:
        lines += ["## Store on / store off", ""] + pair_lines + [""]
    lines += ["## Scenarios", ""]
    for n in results:
        lines.append(f"- `{n}`: {SCENARIOS[n]['desc']}")
    lines += ["", "## Broker settings", ""]
    for b, st in settings.items():
        lines += [f"{b}:", "```", st.strip(), "```", ""]
    if errors:
        lines += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
    lines += [f"![delivered msg/s, drops, CPU per message, peak RSS, p99 latency, connections/s]({name}.png)", ""]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"date": now, "machine": machine_info(), "duration_s": duration, "runs": runs, "smoke": args.smoke,
                   "results": results, "settings": settings, "errors": errors}, f, indent=2)
    return "\n".join(lines)


def transport_lines(results):
    """Issue 14's figures: CPU per message over TLS against Mosquitto's (target <= 0.5x), and
    TLS and WebSocket against the same broker's plain TCP."""
    def med(name, b):
        return median_metrics((results.get(name) or {}).get(b) or [])

    out = []
    for name, sc in SCENARIOS.items():
        if name not in results or not sc.get("transport"):
            continue
        plain = "fanin-q1"
        h, h_tcp = med(name, "harbormq"), med(plain, "harbormq")
        if sc["transport"] == "tls":
            m, m_tcp = med(name, "mosquitto"), med(plain, "mosquitto")
            if h.get("cpu_us_per_msg") and m.get("cpu_us_per_msg"):
                ratio = h["cpu_us_per_msg"] / m["cpu_us_per_msg"]
                out.append(f"- `{name}` broker CPU per message: HarborMQ {h['cpu_us_per_msg']:.2f} us, Mosquitto "
                           f"{m['cpu_us_per_msg']:.2f} us = **{ratio:.2f}x** (target <= 0.5x: "
                           f"{'met' if ratio <= 0.5 else 'NOT met'})")
            for b, t, tcp in (("HarborMQ", h, h_tcp), ("Mosquitto", m, m_tcp)):
                if t.get("cpu_us_per_msg") and tcp.get("cpu_us_per_msg"):
                    out.append(f"- {b} over TLS / its plain TCP (`{plain}`): CPU per message "
                               f"{t['cpu_us_per_msg'] / tcp['cpu_us_per_msg']:.2f}x, delivered/s "
                               f"{t.get('delivered_per_s', 0) / (tcp.get('delivered_per_s') or 1):.2f}x")
        elif h.get("cpu_us_per_msg") and h_tcp.get("cpu_us_per_msg"):
            out.append(f"- HarborMQ over WebSocket / its plain TCP (`{plain}`, same invocation; no Mosquitto "
                       f"figure): CPU per message {h['cpu_us_per_msg']:.2f} / {h_tcp['cpu_us_per_msg']:.2f} us = "
                       f"**{h['cpu_us_per_msg'] / h_tcp['cpu_us_per_msg']:.2f}x**, delivered/s "
                       f"{h.get('delivered_per_s', 0) / (h_tcp.get('delivered_per_s') or 1):.2f}x")
    return ["## TLS and WebSocket", ""] + out + [""] if out else []


def drop_percent(m):
    """Dropped as a percentage of expected deliveries (QoS 0: sent - received; QoS 1: gaps)."""
    if "slow_received" in m:
        # QoS 1: what was acknowledged and then lost (gaps); what was still queued when the drain
        # time ended is not a drop. QoS 0: everything sent and not received.
        lost = m.get("gaps", 0) if m.get("qos") else m.get("dropped", 0)
        expected = m.get("slow_received", 0) + lost
    else:
        lost = m.get("dropped", 0)
        expected = m.get("delivered", 0) + lost
    return 100.0 * lost / expected if expected else 0.0


# (metric or function, panel title, y axis label, log scale, scenario kinds)
PANELS = [
    ("delivered_per_s", "Delivered messages per second", "msg/s (log scale)", True, ("pubsub", "persist", "slowsub", "bridge")),
    (drop_percent, "Dropped (expected deliveries not received)", "% of expected", False, ("pubsub", "persist", "slowsub", "bridge")),
    ("cpu_us_per_msg", "Broker CPU per delivered message", "CPU us / msg (log scale)", True,
     ("pubsub", "persist", "slowsub", "bridge")),
    ("broker_peak_rss_mb", "Broker peak RSS (VmHWM)", "MB (log scale)", True, None),
    ("p99_ms", "End-to-end latency, p99", "ms (log scale)", True, ("pubsub", "slowsub", "bridge")),
    ("conn_per_s", "Connections per second", "connections/s", False, ("conn", "rawconn")),
]


def write_chart(results, out_dir, name):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("gnuplot not found: no chart (apt-get install gnuplot-nox)", file=sys.stderr)
        return
    tmp = tempfile.mkdtemp(prefix="chart-")
    plots = []
    for i, (metric, title, ylabel, log, kinds) in enumerate(PANELS):
        rows = []
        for scen, per_broker in results.items():
            if kinds and SCENARIOS[scen]["kind"] not in kinds:
                continue
            vals = []
            for b in ("harbormq", "mosquitto"):
                m = median_metrics(per_broker.get(b) or [])
                v = metric(m) if callable(metric) else m.get(metric)
                vals.append(v)
            if all(v is None for v in vals):
                continue
            rows.append((scen, vals))
        data = os.path.join(tmp, f"panel{i}.dat")
        with open(data, "w") as f:
            f.write("scenario HarborMQ Mosquitto\n")
            for scen, vals in rows:
                # log panels cannot show 0: draw a zero as missing (the table has the number)
                cells = ["NaN" if v is None or (log and v <= 0) else f"{v:.6g}" for v in vals]
                f.write(f"{scen} {cells[0]} {cells[1]}\n")
        if not rows:
            data = None
        plots.append((title, ylabel, log, data))
    cmds = [f"set terminal pngcairo size 1500,900 noenhanced font ',9'",
            f"set output '{os.path.join(out_dir, name + '.png')}'",
            "set datafile missing 'NaN'",
            "set multiplot layout 2,3 title 'HarborMQ vs Mosquitto (same run, medians)'",
            "set style data histograms", "set style histogram clustered gap 1",
            "set style fill solid 0.8 border -1", "set grid ytics", "set xtics rotate by -30",
            "set key top right autotitle columnheader", "set xlabel 'scenario'"]
    for title, ylabel, log, data in plots:
        cmds += [f"set title '{title}'", f"set ylabel '{ylabel}'",
                 "set logscale y" if log else "unset logscale y", "set yrange [*:*]" if log else "set yrange [0:*]"]
        if data:
            cmds.append(f"plot '{data}' using 2:xtic(1) lc rgb '#1f77b4', '' using 3 lc rgb '#ff7f0e'")
        else:
            cmds += ["unset logscale y", "set yrange [0:1]", "plot 2 notitle"]
    cmds.append("unset multiplot")
    r = subprocess.run([gnuplot], input="\n".join(cmds) + "\n", text=True, capture_output=True, check=False)
    if r.returncode != 0:
        print(f"gnuplot failed: {r.stderr[-500:]}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harbormq", default=os.environ.get("HARBORMQ_BIN", os.path.join(ROOT, "build", "harbormq")),
                    help="harbormq binary (broker and bench tools)")
    ap.add_argument("--tools", help="binary providing `bench` if different from --harbormq")
    ap.add_argument("--scenarios", default=",".join(n for n, sc in SCENARIOS.items() if sc.get("default", True)),
                    help="comma-separated scenario names (default: all but `backlog`)")
    ap.add_argument("--backlog-count", type=int, default=SCENARIOS["backlog"]["count"],
                    help="messages queued by the `backlog` scenario")
    ap.add_argument("--outage-count", type=int, default=SCENARIOS["bridge-outage"]["count"],
                    help="messages queued during the outage of `bridge-outage`")
    ap.add_argument("--bridge-remote", choices=("mosquitto", "harbormq"), default="mosquitto",
                    help="the remote of the bridge scenarios (store on either way)")
    ap.add_argument("--brokers", default="harbormq,mosquitto")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--smoke", action="store_true",
                    help="1 run of 1 s per scenario with fewer clients; writes smoke.* instead of latest.*")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.runs, args.duration = 1, 1
    names = [s for s in args.scenarios.split(",") if s]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n!r}; known: {', '.join(SCENARIOS)}")
    brokers = [b for b in args.brokers.split(",") if b]
    raise_nofile()
    runner = Runner(args)
    results = {n: {b: [] for b in brokers if b in SCENARIOS[n].get("brokers", brokers)} for n in names}
    settings, errors = {}, []
    duration = int(args.duration) if args.duration == int(args.duration) else args.duration
    try:
        for run in range(args.runs):
            for name in names:
                sc = dict(SCENARIOS[name])
                if sc["kind"] == "backlog":
                    sc["count"] = args.backlog_count
                sc = scaled(sc, args.smoke)
                order = brokers if run % 2 == 0 else list(reversed(brokers))
                for b in order:
                    if b not in results[name]:
                        continue
                    label = f"[run {run + 1}/{args.runs}] {name} on {b}"
                    try:
                        m, conf = runner.run_one(name, sc, b, duration)
                        results[name][b].append(m)
                        settings[b + (" (store on)" if sc.get("store") else "")
                                 + (f" ({sc['transport']})" if sc.get("transport") else "")
                                 + (" (default limits)" if sc.get("default_limits") else "")] = conf
                        main_metric = MAIN_METRIC[sc["kind"]]
                        print(f"{label}: {main_metric} {m.get(main_metric, 0):,.0f}", file=sys.stderr)
                    except Exception as e:  # a broker that fails a scenario is reported, not fatal
                        errors.append(f"{label}: {e}")
                        print(f"{label}: FAILED: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(runner.workdir, ignore_errors=True)
    name = "smoke" if args.smoke else "latest"  # a smoke run never replaces the committed latest.*
    text = write_report(args, results, settings, errors, args.out_dir, duration, args.runs, name)
    if not args.no_chart:
        write_chart(results, args.out_dir, name)
    print(text)
    ok = any(r for per in results.values() for r in per.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
