"""One catch boundary per connection (issue 11): an exception met while handling one
connection closes that connection only, logged with its client id; the shard thread and
every other client go on. The exception here is a real one: std::bad_alloc when the broker
runs under an address-space limit (prlimit --as) and one client streams a huge PUBLISH.
Before the boundary it escaped the shard's event loop and ended the whole process."""

import socket
import time

import pytest

import mqttraw
from helpers import PahoClient, wait_for

pytestmark = pytest.mark.harbormq_only

HUGE = 200 * 1024 * 1024  # a PUBLISH that cannot be buffered under the limit below
HEADROOM = 96 * 1024 * 1024  # address space allowed beyond what the warmed-up broker uses


def warm_up(broker):
    """A few clients on every shard, so each thread's heap exists before any limit bites."""
    clients = [PahoClient(broker, client_id="warm-%d" % i) for i in range(6)]
    for c in clients:
        c.subscribe("warm/t", 1)
    clients[0].publish("warm/t", b"w", qos=1)
    for c in clients:
        c.expect(1)
    return clients


def stream_huge_publish(port):
    """Connects as "big", announces a HUGE publish and streams its body until the broker
    closes the connection. Returns the bytes it got through."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(mqttraw.connect_packet("big", version=4))
        assert s.recv(4)[:1] == b"\x20", "no CONNACK"
        s.sendall(b"\x30" + mqttraw.varint(HUGE) + b"\x00\x01t")
        chunk = b"x" * (1 << 20)
        sent = 0
        deadline = time.monotonic() + 60
        try:
            while sent < HUGE and time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            return sent
        raise AssertionError("the broker took all %d MiB of the PUBLISH" % (sent >> 20))
    finally:
        s.close()


def vm_size_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    raise AssertionError("no VmSize for pid %d" % pid)


def test_an_exception_in_one_connection_closes_only_that_connection(make_broker):
    # How much address space the broker needs once every shard has served clients.
    probe = make_broker(max_packet_size=268435455)
    clients = warm_up(probe)
    needed = vm_size_kib(probe.pid) * 1024
    for c in clients:
        c.close()
    probe.stop()

    limit = needed + HEADROOM
    broker = make_broker(max_packet_size=268435455,
                         command_prefix=["prlimit", "--as=%d" % limit, "--"])
    clients = warm_up(broker)
    sent = stream_huge_publish(broker.port)
    assert sent < HUGE
    wait_for(lambda: "internal error handling the connection from" in broker.log_text(), 10,
             what="the internal error in the log")
    log = broker.log_text()
    line = next(l for l in log.splitlines() if "internal error handling the connection" in l)
    assert '(client "big")' in line and "bad_alloc" in line, line
    assert broker.proc.poll() is None, "the broker exited:\n" + broker.log_tail()
    # Everyone else goes on: the clients connected before, and a new one.
    late = PahoClient(broker, client_id="late")
    late.subscribe("after/t", 1)
    clients[1].publish("after/t", b"still here", qos=1)
    assert late.expect(1)[0].payload == b"still here"
    clients[2].publish("warm/t", b"again", qos=1)
    for c in clients:
        assert [m.payload for m in c.expect(2)][-1] == b"again"
    for c in clients + [late]:
        c.close()
