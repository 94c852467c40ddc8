"""Keeps bench/compare.py working: every scenario for one second, one run, small client counts.

Checks only that each scenario produced results for Mosquitto (and for HarborMQ when the
binary has a working `start`), that the figures the report is about are there (drops, CPU
per message, peak RSS; the slow-subscriber and connection figures), and that a smoke run
writes smoke.* and never latest.*; the numbers themselves are not judged (no timing in tests).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("HARBORMQ_BIN", os.path.join(ROOT, "build", "harbormq"))


def has_subcommand(*cmd):
    try:
        return subprocess.run([BIN, *cmd, "--help"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compare_smoke(out, scenarios, timeout):
    """compare.py --smoke on `scenarios` into `out`; returns smoke.json, checked error-free."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"), "--smoke", "--no-chart",
                        "--harbormq", BIN, "--scenarios", scenarios, "--out-dir", out],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(os.path.join(out, "smoke.json")) as f:
        res = json.load(f)
    assert not res["errors"], res["errors"]
    return res


@pytest.mark.skipif(not has_subcommand("bench", "pub") or not os.path.exists("/usr/sbin/mosquitto"),
                    reason="harbormq bench or mosquitto not available")
def test_compare_smoke():
    top = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10).stdout
    brokers = "harbormq,mosquitto" if "start" in top.split() else "mosquitto"
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"), "--smoke", "--no-chart",
                            "--harbormq", BIN, "--brokers", brokers, "--out-dir", out],
                           capture_output=True, text=True, timeout=560)
        assert r.returncode == 0, r.stderr[-2000:]
        with open(os.path.join(out, "smoke.json")) as f:
            res = json.load(f)
        assert os.path.exists(os.path.join(out, "smoke.md"))
        assert not os.path.exists(os.path.join(out, "latest.json")), "--smoke must not write latest.*"
        assert not res["errors"], res["errors"]
        assert {"fanin-q0", "slow-sub-q0", "slow-sub-q1", "conn-10k", "conn-10k-raw"} <= set(res["results"])
        for name, per_broker in res["results"].items():
            for broker in brokers.split(","):
                assert per_broker[broker], f"{name} on {broker}: no result"
                m = per_broker[broker][0]
                assert "broker_peak_rss_mb" in m, (name, broker)
                if name.startswith(("fanin", "slow-sub")):
                    for key in ("dropped", "gaps", "cpu_us_per_msg", "p99_ms"):
                        assert key in m, (name, broker, key)
                if name.startswith("slow-sub"):
                    for key in ("slow_received", "fast_per_s", "fast_alone_per_s", "fast_vs_alone"):
                        assert key in m, (name, broker, key)
                    assert m["fast_alone_per_s"] > 0, (name, broker)
                if name.startswith("conn-10k"):
                    for key in ("conn_per_s", "rss_per_conn_kb", "listen_overflows"):
                        assert key in m, (name, broker, key)


@pytest.mark.skipif(not has_subcommand("bench", "pub") or not os.path.exists("/usr/sbin/mosquitto"),
                    reason="harbormq bench or mosquitto not available")
def test_compare_backlog_smoke():
    """The `backlog` scenario (not in the default list) at smoke scale: each phase's figures
    are reported, and what HarborMQ acknowledged before the kill -9 is all drained."""
    with tempfile.TemporaryDirectory() as out:
        res = compare_smoke(out, "backlog", timeout=300)
        for broker in ("harbormq", "mosquitto"):
            m = res["results"]["backlog"][broker][0]
            for key in ("accepted_per_s", "queue_peak_rss_mb", "listen_s", "restore_rss_mb", "delivered_per_s",
                        "drain_peak_rss_mb", "drained_rss_mb", "rss_before_mb"):
                assert key in m, (broker, key)
        h = res["results"]["backlog"]["harbormq"][0]
        assert h["accepted"] > 0 and h["session_present"], h
        assert h["dropped"] == 0 and h["delivered"] == h["accepted"], h
        with open(os.path.join(out, "smoke.md")) as f:
            assert "## Backlog" in f.read()


@pytest.mark.skipif(not has_subcommand("bench", "pub") or not os.path.exists("/usr/sbin/mosquitto"),
                    reason="harbormq bench or mosquitto not available")
def test_compare_transports_smoke():
    """fanin-q1-tls (both brokers over TLS) and fanin-q1-ws (HarborMQ only, against its own
    fanin-q1) at smoke scale: results, nothing lost, and the report's TLS/WebSocket lines."""
    with tempfile.TemporaryDirectory() as out:
        res = compare_smoke(out, "fanin-q1,fanin-q1-tls,fanin-q1-ws", timeout=300)
        assert set(res["results"]["fanin-q1-ws"]) == {"harbormq"}
        for name, brokers in (("fanin-q1-tls", ("harbormq", "mosquitto")), ("fanin-q1-ws", ("harbormq",))):
            for broker in brokers:
                m = res["results"][name][broker][0]
                assert m["delivered"] > 0 and m["dropped"] == 0 and m["gaps"] == 0, (name, broker, m)
                assert "cpu_us_per_msg" in m and "broker_peak_rss_mb" in m, (name, broker)
        with open(os.path.join(out, "smoke.md")) as f:
            text = f.read()
        assert "## TLS and WebSocket" in text
        assert "harbormq (ratios: to its own fanin-q1)" in text
