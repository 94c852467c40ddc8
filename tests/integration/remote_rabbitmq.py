"""A real RabbitMQ cluster (Debian's rabbitmq-server 3.10, rabbitmq_mqtt plugin) on
127.0.0.1 as the remote of a bridge test (the scale-out test, issue 13).

    with RabbitCluster(tmp_path / "rabbit") as cluster:   # two nodes, start()ed
        sub = collect(cluster.mqtt_port(1), "edge1/#", qos=1, clean=False)
        cluster.stop_node(0)          # rabbitmqctl -n NODE stop; waits for the exit
        cluster.start_node(0)         # starts again, back in the cluster
        cluster.log_text(0)

Every node is /usr/lib/rabbitmq/bin/rabbitmq-server with its own environment: a node name
`rabbitN-<random>@localhost` (unique per run, so parallel runs do not collide), free ports
for AMQP, MQTT and Erlang distribution, its own rabbitmq.conf, enabled-plugins file
(`[rabbitmq_mqtt].`), mnesia and log dirs in tmp_dir. All nodes share one HOME holding the
same random `.erlang.cookie` (mode 0400); every rabbitmqctl call gets that HOME, the node's
environment and `-n NODE`. The cluster has its own epmd, started first as our child
(`epmd -port P -address 127.0.0.1`, ERL_EPMD_PORT=P for the nodes and the CLI), so it
never uses or starts a system epmd and its pid is ours to stop.

start(): every node at once, `rabbitmqctl await_startup`, then every node after the first
`stop_app`, `join_cluster <first>`, `start_app`, a check that the cluster runs all nodes,
and each MQTT port accepting TCP (deadline start_timeout, 90 s).

Processes are ours only: each node (and epmd) runs in a session of its own, and is
signalled by its pid / process group id, never by name. close() stops every node still
running (rabbitmqctl stop), then epmd. A node or epmd still running at interpreter exit is
killed (atexit guard).

RabbitMQ 3.10's MQTT plugin tracks client ids in a Raft cluster (mqtt_node) of all
nodes. Seen here: when the Raft leader's node stops, the other node of a two-node cluster
cannot elect a new leader (no majority), yet it still accepts MQTT connections and
routes their messages (registration is asynchronous); only the cluster-wide take-over of
a client id already connected elsewhere is lost until the node is back.

rabbitmq-server missing is a test failure, not a skip: deps/debian-packages.txt names it,
so CI installs it.
"""

import atexit
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import HOST, free_port, read_log

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD_BIN = "/usr/bin/epmd"

# Popen objects (nodes, epmd) started here and not yet reaped: the atexit guard.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _kill_group(proc, sig=signal.SIGKILL, wait=10):
    """Signal the process group of a Popen we started with start_new_session=True (its
    pgid is its pid): the shell, beam.smp and erl_child_setup under it. Reaps it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    else:
        # the leader has exited; children of it may still be in the group
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        pass


def _kill_leftovers():
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        _kill_group(proc, signal.SIGKILL, 5)


atexit.register(_kill_leftovers)


def _track(proc):
    with _LIVE_LOCK:
        _LIVE.add(proc)


def _untrack(proc):
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def require_rabbitmq():
    """Fails the test (not a skip) when RabbitMQ or epmd is not installed."""
    missing = [p for p in (RABBITMQ_SERVER, RABBITMQCTL, EPMD_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("RabbitMQ is not installed (missing %s): the scale-out bridge test needs "
                    "Debian's rabbitmq-server, listed in deps/debian-packages.txt; install it "
                    "with scripts/install-deps.sh" % ", ".join(missing), pytrace=False)


def _port_open(port, host=HOST):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class RabbitNode:
    """One node's names, ports, files and process (RabbitCluster builds them)."""

    def __init__(self, cluster, index, name):
        self.cluster = cluster
        self.index = index
        self.name = name                      # rabbitN-xxxx@localhost
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.mqtt_port = free_port()
        self.dir = os.path.join(cluster.tmp_dir, name.split("@")[0])
        self.mnesia_base = os.path.join(self.dir, "mnesia")
        self.log_base = os.path.join(self.dir, "log")
        self.config_base = os.path.join(self.dir, "rabbitmq")      # + ".conf"
        self.plugins_file = os.path.join(self.dir, "enabled_plugins")
        self.out_path = os.path.join(self.dir, "rabbitmq-server.out")
        self.log_path = os.path.join(self.log_base, name + ".log")
        self.proc = None
        self.starts = 0
        for d in (self.dir, self.mnesia_base, self.log_base):
            os.makedirs(d, exist_ok=True)
        with open(self.config_base + ".conf", "w") as f:
            f.write("\n".join([
                "listeners.tcp.default = %s:%d" % (HOST, self.amqp_port),
                "mqtt.listeners.tcp.default = %s:%d" % (HOST, self.mqtt_port),
                "loopback_users = none",
                "mqtt.allow_anonymous = true",
                "mqtt.default_user = guest",
                "mqtt.default_pass = guest",
                # nothing else listens: no management, prometheus, stream plugins
                "log.file.level = info",
                "log.console = false",
            ]) + "\n")
        with open(self.plugins_file, "w") as f:
            f.write("[rabbitmq_mqtt].\n")

    def env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_", "ERLANG_"))}
        env.update({
            "HOME": self.cluster.home,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": self.config_base,
            "RABBITMQ_ENABLED_PLUGINS_FILE": self.plugins_file,
            "RABBITMQ_MNESIA_BASE": self.mnesia_base,
            "RABBITMQ_LOG_BASE": self.log_base,
            # not /etc/rabbitmq/rabbitmq-env.conf (it could set a node name or ports)
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),
            # distribution on the loopback only
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(self.cluster.epmd_port),
        })
        return env

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class RabbitCluster:
    """A RabbitMQ cluster of `nodes` nodes on 127.0.0.1 with the MQTT plugin (anonymous
    MQTT as guest). Node i (0-based) is rabbit<i+1>-<suffix>@localhost; node 0 is the one
    the others join. See the module docstring."""

    def __init__(self, tmp_dir, nodes=2, start_timeout=90.0, stop_timeout=60.0):
        assert nodes >= 1
        self.tmp_dir = str(tmp_dir)
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.suffix = secrets.token_hex(3)
        self.home = os.path.join(self.tmp_dir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.cookie = secrets.token_hex(16).upper()
        cookie_path = os.path.join(self.home, ".erlang.cookie")
        with open(cookie_path, "w") as f:
            f.write(self.cookie)
        os.chmod(cookie_path, 0o400)
        self.epmd_port = free_port()
        self.epmd_proc = None
        self.epmd_out = os.path.join(self.tmp_dir, "epmd.out")
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.nodes = [RabbitNode(self, i, "rabbit%d-%s@localhost" % (i + 1, self.suffix))
                      for i in range(nodes)]

    # -- addresses

    def node_name(self, i):
        return self.nodes[i].name

    def mqtt_port(self, i):
        return self.nodes[i].mqtt_port

    def amqp_port(self, i):
        return self.nodes[i].amqp_port

    @property
    def epmd_pid(self):
        return self.epmd_proc.pid if self.epmd_proc is not None else None

    # -- rabbitmqctl

    def ctl(self, i, *args, timeout=60.0, check=True):
        """rabbitmqctl -n NODE args... with node i's environment; returns the
        CompletedProcess (stdout+stderr as text). check: fail on a non-zero exit."""
        node = self.nodes[i]
        cmd = [RABBITMQCTL, "-n", node.name] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, env=node.env(), cwd=node.dir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            raise AssertionError("%s: no answer within %.0fs; output:\n%s\nnode log:\n%s" % (
                " ".join(cmd), timeout, out.decode("utf-8", "replace"), self.log_tail(i)))
        res = subprocess.CompletedProcess(cmd, proc.returncode, out.decode("utf-8", "replace"))
        if check and res.returncode != 0:
            raise AssertionError("%s exited with %d:\n%s\nnode log:\n%s" % (
                " ".join(cmd), res.returncode, res.stdout, self.log_tail(i)))
        return res

    # -- process control

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            for node in self.nodes:
                if node.proc is not None:
                    _kill_group(node.proc, signal.SIGKILL, 5)
                    _untrack(node.proc)
            if self.epmd_proc is not None:
                _kill_group(self.epmd_proc, signal.SIGKILL, 5)
                _untrack(self.epmd_proc)
        except Exception:
            pass

    def _start_epmd(self, timeout=10.0):
        if self.epmd_proc is not None and self.epmd_proc.poll() is None:
            return
        with open(self.epmd_out, "ab") as out:
            self.epmd_proc = subprocess.Popen(
                [EPMD_BIN, "-port", str(self.epmd_port), "-address", HOST],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL, cwd=self.tmp_dir,
                start_new_session=True)
        _track(self.epmd_proc)
        deadline = time.monotonic() + timeout
        while not _port_open(self.epmd_port):
            if self.epmd_proc.poll() is not None or time.monotonic() > deadline:
                out = read_log(self.epmd_out)
                self._stop_epmd()
                pytest.fail("epmd on port %d did not start: %s" % (self.epmd_port, out))
            time.sleep(0.05)

    def _stop_epmd(self):
        proc = self.epmd_proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                _kill_group(proc)
        _untrack(proc)
        self.epmd_proc = None

    def _spawn(self, i):
        node = self.nodes[i]
        assert not node.running(), "%s already running (pid %d)" % (node.name, node.proc.pid)
        node.starts += 1
        with open(node.out_path, "ab") as out:
            out.write(b"\n===== start #%d\n" % node.starts)
            out.flush()
            node.proc = subprocess.Popen([RABBITMQ_SERVER], env=node.env(), cwd=node.dir,
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        _track(node.proc)

    def _await_started(self, i, deadline):
        """await_startup (short tries, so a node that exits is noticed), then the MQTT
        port. Fails the test with the node's log at the deadline."""
        node = self.nodes[i]
        while True:
            if node.proc.poll() is not None:
                pytest.fail("RabbitMQ node %s exited with %d during startup; output:\n%s\n"
                            "log:\n%s" % (node.name, node.proc.returncode,
                                          read_log(node.out_path)[-3000:], self.log_tail(i)))
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("RabbitMQ node %s not started within %.0fs; log:\n%s" % (
                    node.name, self.start_timeout, self.log_tail(i)))
            wait = max(1, min(10, int(left)))
            r = self.ctl(i, "await_startup", "--timeout", wait, timeout=wait + 30, check=False)
            if r.returncode == 0:
                break
            time.sleep(0.5)
        while not _port_open(node.mqtt_port):
            if node.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("RabbitMQ node %s: MQTT port %d not accepting; log:\n%s" % (
                    node.name, node.mqtt_port, self.log_tail(i)))
            time.sleep(0.1)

    def running_nodes(self, i=0):
        """The cluster's running node names as node i sees them."""
        r = self.ctl(i, "cluster_status", "--formatter", "json")
        text = r.stdout[r.stdout.index("{"):]
        return sorted(json.loads(text).get("running_nodes", []))

    def start(self):
        """Start every node, join them into one cluster, wait for the MQTT ports."""
        require_rabbitmq()
        deadline = time.monotonic() + self.start_timeout
        self._start_epmd()
        for i in range(len(self.nodes)):
            self._spawn(i)
        for i in range(len(self.nodes)):
            self._await_started(i, deadline)
        first = self.nodes[0].name
        for i in range(1, len(self.nodes)):
            self.ctl(i, "stop_app")
            self.ctl(i, "join_cluster", first)
            self.ctl(i, "start_app")
            self._await_started(i, deadline)
        want = sorted(n.name for n in self.nodes)
        while self.running_nodes(0) != want:
            if time.monotonic() > deadline:
                pytest.fail("RabbitMQ cluster: running nodes %r, expected %r" % (
                    self.running_nodes(0), want))
            time.sleep(0.5)
        return self

    def stop_node(self, i, timeout=None):
        """rabbitmqctl -n NODE stop, then wait for the node's process to exit (SIGKILL of
        its process group and a failure at the deadline)."""
        node = self.nodes[i]
        assert node.running(), "%s is not running" % node.name
        timeout = self.stop_timeout if timeout is None else timeout
        t0 = time.monotonic()
        self.ctl(i, "stop", timeout=timeout)
        try:
            node.proc.wait(max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            _kill_group(node.proc)
            _untrack(node.proc)
            node.proc = None
            raise AssertionError("%s still running %.0fs after rabbitmqctl stop; log:\n%s" % (
                node.name, timeout, self.log_tail(i)))
        # children (erl_child_setup) of the group, if any outlived beam
        _kill_group(node.proc, signal.SIGKILL, 1)
        _untrack(node.proc)
        node.proc = None

    def kill_node(self, i):
        """SIGKILL the node's process group (a crash, not a clean stop)."""
        node = self.nodes[i]
        assert node.proc is not None, "%s not started" % node.name
        _kill_group(node.proc)
        _untrack(node.proc)
        node.proc = None

    def start_node(self, i, timeout=None):
        """Start a stopped node again (its mnesia dir is kept: it comes back as a cluster
        member) and wait until it runs and its MQTT port accepts TCP."""
        timeout = self.start_timeout if timeout is None else timeout
        self._start_epmd()
        self._spawn(i)
        self._await_started(i, time.monotonic() + timeout)

    def running(self, i):
        return self.nodes[i].running()

    def close(self):
        """Stop every node still running (rabbitmqctl stop; SIGKILL of its process group
        if that fails), then the epmd started here. Never fails."""
        for i in reversed(range(len(self.nodes))):
            node = self.nodes[i]
            if node.proc is None:
                continue
            if node.proc.poll() is None:
                try:
                    self.stop_node(i, timeout=30)
                    continue
                except (AssertionError, Exception):
                    pass
            if node.proc is not None:
                _kill_group(node.proc)
                _untrack(node.proc)
                node.proc = None
        self._stop_epmd()

    # -- observation

    def log_text(self, i):
        """Node i's log file, then what rabbitmq-server printed on stdout/stderr."""
        node = self.nodes[i]
        return read_log(node.log_path) + read_log(node.out_path)

    def log_tail(self, i, n=40):
        return "\n".join(self.log_text(i).splitlines()[-n:])
