#!/usr/bin/python3
"""Side-by-side benchmark: HarborMQ against Debian's Mosquitto on this machine.

Starts each broker on a free loopback port with equivalent settings, runs the same
scenarios against each (alternating which broker goes first, --runs times), and writes
the medians and the HarborMQ / Mosquitto ratios to bench/results/latest.md (+ .json, .png).

The load comes from `harbormq bench pub|sub|conn` (the same binary). Broker CPU seconds
(utime+stime from /proc/PID/stat) and peak RSS (VmHWM) are read around every run.

    /usr/bin/python3 bench/compare.py                 # full run (make bench)
    /usr/bin/python3 bench/compare.py --smoke         # every scenario for 1 s, 1 run
    /usr/bin/python3 bench/compare.py --scenarios fanin-q0,conn-10k --runs 5
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
    "conn-10k": dict(kind="conn", conns=10000, desc="10,000 connections, unlimited rate (256 pending)"),
    "persist-q1": dict(kind="persist", store=True, pubs=10, count=500000, size=100, inflight=64,
                       desc="QoS 1 to 1 offline persistent subscriber, then drain; store on, inflight 64"),
    "persist-q1-nostore": dict(kind="persist", store=False, pubs=10, count=500000, size=100, inflight=64,
                               desc="same, store off (memory only)"),
    "persist-q1-w1000": dict(kind="persist", store=True, pubs=10, count=500000, size=100, inflight=1000,
                             desc="as persist-q1 with 1000 messages in flight per publisher"),
    "persist-q1-nostore-w1000": dict(kind="persist", store=False, pubs=10, count=500000, size=100,
                                     inflight=1000, desc="same, store off (memory only)"),
}

SMOKE_SCALE = {"pubs": 10, "subs": 10, "conns": 200, "count": 1000}


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


class Broker:
    """One broker process for one run."""

    def __init__(self, kind, harbormq_bin, workdir, persistence):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir)
        self.proc = None
        if kind == "mosquitto":
            self.conf = os.path.join(self.dir, "mosquitto.conf")
            self.settings = "\n".join([
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous true",
                "max_connections -1",
                "max_queued_messages 0",
                "max_queued_bytes 0",
                # 65535 = HarborMQ's max_inflight_window. 0 ("unlimited") stalls QoS 1 delivery
                # in Mosquitto 2.0.11: messages stay queued until the client sends something.
                "max_inflight_messages 65535",
                "max_inflight_bytes 0",
                "set_tcp_nodelay true",
                f"persistence {'true' if persistence else 'false'}",
                f"persistence_location {self.dir}/",
                "log_dest stderr",
                "log_type error",
            ]) + "\n"
            self.cmd = [MOSQUITTO, "-c", self.conf]
        else:
            self.conf = os.path.join(self.dir, "harbormq.conf")
            # log level error, as Mosquitto's log_type error above; own pid file per run.
            lines = [f'listeners.tcp {{ bind = "127.0.0.1:{self.port}" }}',
                     "mqtt { max_mqueue_len = 0, max_inflight_window = 65535 }",
                     f'system {{ pid_file = "{self.dir}/harbormq.pid" }}',
                     "log { level = error }"]
            if persistence:
                # disk_cache_size = 0: no message bound, as Mosquitto (default 102,400 would
                # refuse part of a 500,000-message run).
                lines.append(f'sqlite {{ mounted_file_path = "{self.dir}", disk_cache_size = 0 }}')
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

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmRSS")

    def hwm_kb(self):
        return proc_status_kb(self.proc.pid, "VmHWM")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


class Runner:
    def __init__(self, args):
        self.args = args
        self.tools = args.tools or args.harbormq
        self.workdir = tempfile.mkdtemp(prefix="harbormq-bench-")

    def bench(self, mode, port, opts, json_path, wait=True, timeout=600):
        cmd = [self.tools, "bench", mode, "-p", str(port), "--json", json_path, "--quiet"] + opts
        if self.args.verbose:
            print("   $", " ".join(cmd), file=sys.stderr)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not wait:
            return proc
        return self.finish(proc, json_path, timeout)

    def finish(self, proc, json_path, timeout=600):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"bench timed out: {err[-300:]}")
        if proc.returncode != 0 or not os.path.exists(json_path):
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
        base_kb = broker.rss_kb()
        proc = self.bench("conn", broker.port, ["-c", str(sc["conns"]), "--max-pending", "256",
                                                "--duration", str(max(1, duration)), "--ready-file", ready],
                          conn_json, wait=False)
        self.wait_file(ready, proc, timeout=300)
        time.sleep(0.5)
        held_kb = broker.rss_kb()
        res = self.finish(proc, conn_json)
        n = max(1, res["connected"])
        return {
            "connected": res["connected"],
            "connect_failed": res["connect_failed"],
            "conn_per_s": res["connect_rate"],
            "connect_p50_ms": res["connect_time_ms"]["p50"],
            "connect_p99_ms": res["connect_time_ms"]["p99"],
            "rss_per_conn_kb": (held_kb - base_kb) / n,
            "errors": res["error_count"],
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

    def run_one(self, name, sc, kind, duration):
        persistence = sc.get("store", False)
        broker = Broker(kind, self.args.harbormq, self.workdir, persistence).start()
        try:
            cpu0 = broker.cpu_s()
            fn = {"pubsub": self.run_pubsub, "conn": self.run_conn, "persist": self.run_persist}[sc["kind"]]
            m = fn(sc, broker, duration)
            cpu = broker.cpu_s() - cpu0
            m["broker_cpu_s"] = cpu
            m["broker_peak_rss_mb"] = broker.hwm_kb() / 1024
            if m.get("delivered"):
                m["cpu_us_per_msg"] = cpu * 1e6 / m["delivered"]
            return m, broker.settings
        finally:
            broker.stop()


def scaled(sc, smoke):
    sc = dict(sc)
    if smoke:
        for k, v in SMOKE_SCALE.items():
            if k in sc:
                sc[k] = min(sc[k], v)
        if sc.get("fan", 1) > 1:
            sc["fan"] = sc["subs"]
    return sc


MAIN_METRIC = {"pubsub": "delivered_per_s", "conn": "conn_per_s", "persist": "delivered_per_s"}
COLUMNS = [
    ("accepted_per_s", "accepted/s", "{:,.0f}"),
    ("delivered_per_s", "delivered/s", "{:,.0f}"),
    ("dropped", "dropped", "{:,.0f}"),
    ("duplicates", "dup", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("conn_per_s", "conn/s", "{:,.0f}"),
    ("rss_per_conn_kb", "KiB/conn", "{:.1f}"),
    ("broker_cpu_s", "CPU s", "{:.2f}"),
    ("cpu_us_per_msg", "CPU us/msg", "{:.2f}"),
    ("broker_peak_rss_mb", "peak RSS MB", "{:.1f}"),
]


def median_metrics(runs):
    keys = set().union(*[r.keys() for r in runs]) if runs else set()
    return {k: statistics.median([r[k] for r in runs if k in r]) for k in keys}


def fmt(v, f):
    return "-" if v is None else f.format(v)


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


def write_report(args, results, settings, errors, out_dir, duration, runs):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# HarborMQ vs Mosquitto — {now}", "",
             f"Machine: {machine_info()}  ",
             f"Brokers: HarborMQ ({args.harbormq}), {mosquitto_version()}  ",
             f"Command: `/usr/bin/python3 bench/compare.py {' '.join(sys.argv[1:])}`  ",
             f"Each value is the median of {runs} run(s) of {duration} s; brokers alternate which goes first. "
             "accepted/s = messages acknowledged (QoS 1) or written (QoS 0) by the publishers; "
             "delivered/s = distinct messages received by the subscribers; dropped = expected deliveries "
             "(accepted x subscribers per message) minus distinct deliveries. Broker CPU = utime+stime of the "
             "broker process during the scenario; peak RSS = VmHWM.", ""]
    head = ["scenario", "broker"] + [c[1] for c in COLUMNS] + ["ratio H/M"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, per_broker in results.items():
        sc = SCENARIOS[name]
        main = MAIN_METRIC[sc["kind"]]
        med = {b: median_metrics(r) for b, r in per_broker.items() if r}
        ratio = None
        if med.get("harbormq", {}).get(main) and med.get("mosquitto", {}).get(main):
            ratio = med["harbormq"][main] / med["mosquitto"][main]
        for b in ("harbormq", "mosquitto"):
            if b not in per_broker:
                continue
            m = med.get(b)
            if not m:
                row = [name, b] + ["n/a"] * len(COLUMNS) + ["-"]
            else:
                row = [name, b] + [fmt(m.get(k), f) for k, _, f in COLUMNS]
                row.append(f"{ratio:.2f}" if (ratio is not None and b == "harbormq") else "")
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Ratio H/M is HarborMQ / Mosquitto for delivered/s (conn-10k: connections per second).", ""]
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
    for name in results:
        lines.append(f"- `{name}`: {SCENARIOS[name]['desc']}")
    lines += ["", "## Broker settings", ""]
    for b, s in settings.items():
        lines += [f"{b}:", "```", s.strip(), "```", ""]
    if errors:
        lines += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
    lines += ["![throughput](latest.png)", ""]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "latest.json"), "w") as f:
        json.dump({"date": now, "machine": machine_info(), "duration_s": duration, "runs": runs,
                   "results": results, "settings": settings, "errors": errors}, f, indent=2)
    return "\n".join(lines)


def write_chart(results, out_dir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("gnuplot not found: no chart (apt-get install gnuplot-nox)", file=sys.stderr)
        return
    data = os.path.join(out_dir, "latest.dat")
    with open(data, "w") as f:
        f.write("scenario harbormq mosquitto\n")
        for name, per_broker in results.items():
            main = MAIN_METRIC[SCENARIOS[name]["kind"]]
            vals = []
            for b in ("harbormq", "mosquitto"):
                runs = per_broker.get(b) or []
                vals.append(statistics.median([r[main] for r in runs if main in r]) if runs else 0)
            f.write(f"{name} {vals[0]:.0f} {vals[1]:.0f}\n")
    script = f"""
set terminal pngcairo size 1100,500 noenhanced
set output '{os.path.join(out_dir, "latest.png")}'
set title 'Throughput per scenario (delivered msg/s; conn-10k: connections/s)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right autotitle columnheader
set logscale y
set grid ytics
set xtics rotate by -20
plot '{data}' using 2:xtic(1) lc rgb '#1f77b4', '' using 3 lc rgb '#ff7f0e'
"""
    subprocess.run([gnuplot], input=script, text=True, check=False)
    os.remove(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harbormq", default=os.environ.get("HARBORMQ_BIN", os.path.join(ROOT, "build", "harbormq")),
                    help="harbormq binary (broker and bench tools)")
    ap.add_argument("--tools", help="binary providing `bench` if different from --harbormq")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    ap.add_argument("--brokers", default="harbormq,mosquitto")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--smoke", action="store_true", help="1 run of 1 s per scenario with fewer clients")
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
    results = {n: {b: [] for b in brokers} for n in names}
    settings, errors = {}, []
    duration = int(args.duration) if args.duration == int(args.duration) else args.duration
    try:
        for run in range(args.runs):
            for name in names:
                sc = scaled(SCENARIOS[name], args.smoke)
                order = brokers if run % 2 == 0 else list(reversed(brokers))
                for b in order:
                    label = f"[run {run + 1}/{args.runs}] {name} on {b}"
                    try:
                        m, conf = runner.run_one(name, sc, b, duration)
                        results[name][b].append(m)
                        settings[b + (" (store on)" if sc.get("store") else "")] = conf
                        main_metric = MAIN_METRIC[sc["kind"]]
                        print(f"{label}: {main_metric} {m.get(main_metric, 0):,.0f}", file=sys.stderr)
                    except Exception as e:  # a broker that fails a scenario is reported, not fatal
                        errors.append(f"{label}: {e}")
                        print(f"{label}: FAILED: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(runner.workdir, ignore_errors=True)
    text = write_report(args, results, settings, errors, args.out_dir, duration, args.runs)
    if not args.no_chart:
        write_chart(results, args.out_dir)
    print(text)
    ok = any(r for per in results.values() for r in per.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
