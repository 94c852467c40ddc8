#!/usr/bin/python3
"""TLS listeners, HarborMQ against Debian's Mosquitto in the same run, same certificate (ECDSA
P-256, made here with the openssl command line): MQTT-over-TLS connections set up per second
(TCP connect, TLS handshake, CONNECT, CONNACK) by 2,000 clients from 8 threads, broker CPU per
connection, and broker memory per idle TLS connection (RSS with all 2,000 open, minus RSS
before, divided by 2,000). The client is Python's ssl module, the same for both brokers.

    /usr/bin/python3 bench/tls_cost.py [--harbormq build/harbormq] [--clients 2000] [--runs 3]
"""

import argparse
import concurrent.futures
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (ports, /proc readers, certificates, terminate)

CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])  # empty client id


def start(broker, harbormq, d, certs):
    ca, cert, key = certs
    port, tcp = compare.free_port(), compare.free_port()
    if broker == "harbormq":
        conf = os.path.join(d, "harbormq.conf")
        with open(conf, "w") as f:
            f.write('listeners.tcp { bind = "127.0.0.1:%d" }\nsystem { num_taskq_thread = 2 }\n'
                    'listeners.ssl {\n bind = "127.0.0.1:%d"\n certfile = "%s"\n keyfile = "%s"\n}\n'
                    "mqtt { max_connections = 100000 }\n" % (tcp, port, cert, key))
        cmd = [harbormq, "start", "--conf", conf, "--pid-file", os.path.join(d, "pid")]
    else:
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("per_listener_settings false\nuser root\nallow_anonymous true\n"
                    "persistence false\nlog_dest none\nlistener %d 127.0.0.1\ncertfile %s\n"
                    "keyfile %s\n" % (port, cert, key))
        cmd = ["/usr/sbin/mosquitto", "-c", conf]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not compare.wait_port(port, proc):
        compare.terminate(proc)
        raise SystemExit("%s did not listen (exit code %s)" % (broker, proc.poll()))
    return proc, port


def open_client(ctx, port):
    raw = socket.create_connection(("127.0.0.1", port), 10)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(CONNECT)
    ack = b""
    while len(ack) < 4:
        chunk = s.recv(4 - len(ack))
        if not chunk:
            raise RuntimeError("closed before CONNACK")
        ack += chunk
    if ack[0] != 0x20 or ack[3] != 0:
        raise RuntimeError("CONNACK %r" % ack)
    return s


def run_once(broker, harbormq, certs, clients):
    ctx = ssl.create_default_context(cafile=certs[0])
    with tempfile.TemporaryDirectory() as d:
        proc, port = start(broker, harbormq, d, certs)
        try:
            open_client(ctx, port).close()  # warm up: the first handshake loads things
            time.sleep(0.5)
            rss0 = compare.proc_status_kb(proc.pid, "VmRSS")
            cpu0 = compare.proc_cpu_s(proc.pid)
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                socks = list(pool.map(lambda _: open_client(ctx, port), range(clients)))
            elapsed = time.monotonic() - t0
            cpu = compare.proc_cpu_s(proc.pid) - cpu0
            time.sleep(2.0)  # idle: let the broker trim what it trims
            rss = compare.proc_status_kb(proc.pid, "VmRSS")
            for s in socks:
                s.close()
            return clients / elapsed, cpu / clients * 1e6, (rss - rss0) * 1024 / clients
        finally:
            compare.terminate(proc, 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--harbormq", default=os.path.join(HERE, "..", "build", "harbormq"))
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    compare.raise_nofile()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        certs = compare.make_certificate(d)  # (ca, cert, key)
        for r in range(a.runs):
            order = ["harbormq", "mosquitto"] if r % 2 == 0 else ["mosquitto", "harbormq"]
            for broker in order:
                results.setdefault(broker, []).append(run_once(broker, a.harbormq, certs,
                                                               a.clients))
    med = {b: [statistics.median(x[i] for x in v) for i in range(3)] for b, v in results.items()}
    print("| broker | TLS connections/s | broker CPU µs per connection | bytes per idle TLS connection |")
    print("|---|---|---|---|")
    for b in ("harbormq", "mosquitto"):
        print("| %s | %.0f | %.0f | %.0f |" % (b, *med[b]))
    h, m = med["harbormq"], med["mosquitto"]
    print("\nHarborMQ / Mosquitto: connections/s %.2fx, CPU per connection %.2fx, "
          "memory per idle connection %.2fx" % (h[0] / m[0], h[1] / m[1], h[2] / m[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
