"""Keeps bench/compare.py working: every scenario for one second, one run, small client counts.

Checks only that each scenario produced results for Mosquitto (and for HarborMQ when the
binary has a working `start`); the numbers themselves are not judged (no timing in tests).
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
        with open(os.path.join(out, "latest.json")) as f:
            res = json.load(f)
        assert os.path.exists(os.path.join(out, "latest.md"))
        assert not res["errors"], res["errors"]
        for name, per_broker in res["results"].items():
            for broker in brokers.split(","):
                assert per_broker[broker], f"{name} on {broker}: no result"
