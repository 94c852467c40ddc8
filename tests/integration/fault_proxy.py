"""A loopback TCP proxy that injects network faults, for the bridge integration tests.

    with FaultProxy("127.0.0.1", remote.port) as proxy:   # listens on 127.0.0.1:proxy.port
        ...point the bridge at proxy.port...
        proxy.pause()          # the link goes silent (nothing delivered, nothing lost)
        proxy.pass_through()   # held data is delivered

One background thread (daemon) runs a poll() loop over the listening socket, every
connection pair and a self-pipe (mode changes and close() wake it at once). The mode is a
property of the proxy, applying to every current and future connection:

  pass_through()   forward both directions (also ends pause / blackhole / refuse / throttle)
  pause()          hold: stop reading and writing on both sides; TCP backpressure builds up,
                   nothing is dropped, no FIN/RST; resumed by pass_through()/throttle()
  blackhole()      read and discard both ways, send nothing (data vanishes; FIN is not
                   passed on either); data buffered before is discarded too
  reset()          abort every current connection with RST (SO_LINGER 0 + close); the mode
                   is unchanged, new connections keep being accepted
  refuse()         reset every current connection; new ones are accepted and reset at once
  throttle(bps)    forward at most bps bytes/s in each direction (one token bucket per
                   direction, shared by all connections), losing nothing

The upstream connection of a client connection is opened when the mode first forwards
(at once in pass_through / throttle; a connection accepted during pause or blackhole
reaches the target only after pass_through()). If the target refuses or resets, the
client side is reset too; a FIN is passed on (half-close) once the data before it is.

Mode setters are synchronous: when they return, the loop has applied them (for reset() /
refuse(): the connections are aborted). Bounds: at most MAX_CONNECTIONS concurrent
connections (more are accepted and reset, counted in connections_refused), at most
MAX_BUFFER bytes buffered per direction per connection (less while throttled).

Counters (read them any time): connections_accepted (every accept(), refused ones
included), connections_refused, active_connections, bytes_up (forwarded to the target),
bytes_down (forwarded to the client), bytes_dropped (discarded by blackhole / reset).
"""

import errno
import os
import select
import socket
import struct
import threading
import time

HOST = "127.0.0.1"
MAX_CONNECTIONS = 64
MAX_BUFFER = 1024 * 1024
CHUNK = 65536
POLL_INTERVAL = 0.05  # the loop's longest sleep when nothing happens (s)

PASS, PAUSE, BLACKHOLE, REFUSE, THROTTLE = "pass", "pause", "blackhole", "refuse", "throttle"
_FORWARDING = (PASS, THROTTLE)

_IN = select.POLLIN | select.POLLPRI
_OUT = select.POLLOUT
_ERR = select.POLLERR | select.POLLHUP | select.POLLNVAL
_RDHUP = select.POLLRDHUP


def _abort(sock):
    """Close with RST (SO_LINGER on, timeout 0)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock):
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


class _Bucket:
    """Token bucket: rate bytes/s, capacity rate/10 (a 100 ms burst), starts full."""

    def __init__(self, rate):
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate / 10.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now):
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def available(self):
        return int(self.tokens)

    def take(self, n):
        self.tokens -= n

    def seconds_until(self, n):
        """Time until n bytes (at most one burst) may be sent."""
        need = min(float(n), self.capacity) - self.tokens
        return max(0.0, need / self.rate)


class _Side:
    """One socket of a pair and the bytes read from it, waiting to go to the other side."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()   # read from this socket, to be written to the peer
        self.eof = False         # this socket sent FIN (or recv returned b"")
        self.errored = False     # recv failed (reset) while blackholed
        self.peer_closed = False  # FIN / RST noticed (not read) while paused
        self.shut_wr = False     # we sent FIN to this socket


class _Pair:
    def __init__(self, client_sock):
        self.client = _Side(client_sock)
        self.upstream = None       # _Side once the upstream connect was started
        self.connecting = False    # non-blocking connect in progress
        self.dead = False


class FaultProxy:
    """Loopback TCP proxy to target_host:target_port on 127.0.0.1:port (see module doc)."""

    def __init__(self, target_host, target_port, host=HOST):
        self.target = (target_host, int(target_port))
        self.host = host
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self._port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

        self._cond = threading.Condition()
        self._commands = []      # (function, done Event), run by the loop
        self._mode = PASS
        self._rate = None
        self._buckets = None     # {"up": _Bucket, "down": _Bucket} while throttled
        self._pairs = []
        self._closing = False
        self._closed = False
        self.error = None        # an unexpected exception that ended the loop

        self.connections_accepted = 0
        self.connections_refused = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.bytes_dropped = 0

        self._thread = threading.Thread(target=self._run, name="FaultProxy-%d" % self._port,
                                        daemon=True)
        self._thread.start()

    # -- public API

    @property
    def port(self):
        return self._port

    @property
    def mode(self):
        return self._mode

    @property
    def active_connections(self):
        return len(self._pairs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "FaultProxy(127.0.0.1:%d -> %s:%d, mode=%s)" % (
            self._port, self.target[0], self.target[1], self._mode)

    def pass_through(self):
        self._command(lambda: self._set_mode(PASS))

    def pause(self):
        self._command(lambda: self._set_mode(PAUSE))

    def blackhole(self):
        self._command(lambda: self._set_mode(BLACKHOLE))

    def refuse(self):
        self._command(lambda: self._set_mode(REFUSE))

    def throttle(self, bytes_per_s):
        rate = int(bytes_per_s)
        if rate <= 0:
            raise ValueError("throttle rate must be > 0 bytes/s")
        self._command(lambda: self._set_mode(THROTTLE, rate))

    def reset(self):
        self._command(self._reset_all)

    def wait_connections(self, n, timeout=5.0):
        """Wait until at least n connections were accepted in total; returns the count,
        fails (AssertionError) at the deadline."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.connections_accepted >= n, timeout)
            got = self.connections_accepted
        assert ok, "%r: %d connections accepted within %.1fs, expected >= %d" % (
            self, got, timeout, n)
        return got

    def close(self, timeout=5.0):
        """Stop the loop thread and close every socket (idempotent)."""
        if self._closed:
            return
        with self._cond:
            self._closing = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self._cleanup()
            self._closed = True
        assert not alive, "%r: loop thread did not stop within %.1fs" % (self, timeout)

    # -- commands (run in the loop thread)

    def _command(self, fn, timeout=5.0):
        if self._closing or not self._thread.is_alive():
            raise RuntimeError("%r is closed (loop error: %r)" % (self, self.error))
        done = threading.Event()
        with self._cond:
            self._commands.append((fn, done))
        self._wake()
        assert done.wait(timeout), "%r: loop did not apply a command within %.1fs" % (
            self, timeout)
        if self.error is not None:
            raise RuntimeError("%r loop failed: %r" % (self, self.error))

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # pipe full (a wake-up is pending anyway) or closed

    def _set_mode(self, mode, rate=None):
        self._mode = mode
        if mode == THROTTLE:
            self._rate = rate
            self._buckets = {"up": _Bucket(rate), "down": _Bucket(rate)}
        else:
            self._rate = None
            self._buckets = None
        if mode == REFUSE:
            self._reset_all()
        elif mode == BLACKHOLE:
            for p in self._pairs:
                for side in (p.client, p.upstream):
                    if side is not None:
                        self.bytes_dropped += len(side.buf)
                        side.buf.clear()
        elif mode in _FORWARDING:
            for p in self._pairs:
                if p.upstream is None:
                    self._connect_upstream(p)

    def _reset_all(self):
        for p in self._pairs:
            self._kill_pair(p)
        self._pairs = [p for p in self._pairs if not p.dead]

    # -- the loop

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # keep the failure visible to the test, stop cleanly
            self.error = e
        finally:
            with self._cond:
                for _, done in self._commands:
                    done.set()
                self._commands = []
                self._cond.notify_all()

    def _loop(self):
        while True:
            with self._cond:
                if self._closing:
                    return
                commands, self._commands = self._commands, []
            for fn, done in commands:
                try:
                    fn()
                finally:
                    done.set()

            now = time.monotonic()
            if self._buckets:
                for b in self._buckets.values():
                    b.refill(now)

            poller = select.poll()
            poller.register(self._wake_r, _IN)
            poller.register(self._listener.fileno(), _IN)
            fds = {}
            timeout = POLL_INTERVAL
            for p in self._pairs:
                for side, peer in self._live_sides(p):
                    ev = 0
                    if self._wants_read(p, side):
                        ev |= _IN
                    elif self._mode == PAUSE and not side.eof and not side.peer_closed:
                        ev |= _RDHUP  # notice a peer that gave up while held
                    if side is p.upstream and p.connecting:
                        ev |= _OUT
                    elif peer.buf and not side.shut_wr and self._mode in _FORWARDING:
                        # side is written with the bytes read from peer
                        wait = self._throttle_wait(self._direction_to(p, side), len(peer.buf))
                        if wait == 0:
                            ev |= _OUT
                        else:
                            timeout = min(timeout, wait)
                    if ev:
                        fd = side.sock.fileno()
                        fds[fd] = (p, side)
                        poller.register(fd, ev)
            events = poller.poll(max(1, int(timeout * 1000 + 0.999)))

            for fd, ev in events:
                if fd == self._wake_r:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                elif fd == self._listener.fileno():
                    self._accept()
                else:
                    p, side = fds[fd]
                    if not p.dead:
                        self._service(p, side, ev)
            for p in self._pairs:
                if not p.dead:
                    self._check_finished(p)
            if any(p.dead for p in self._pairs):
                self._pairs = [p for p in self._pairs if not p.dead]

    def _live_sides(self, p):
        """(side, the other side) for each socket of the pair; before the upstream
        connection exists the client's other side is an empty stand-in."""
        if p.upstream is None:
            return [(p.client, _NO_PEER)]
        return [(p.client, p.upstream), (p.upstream, p.client)]

    def _direction_to(self, p, side):
        """Direction of the data written to side."""
        return "down" if side is p.client else "up"

    def _read_cap(self):
        if self._mode == THROTTLE:
            return min(MAX_BUFFER, max(4096, self._rate // 4))
        return MAX_BUFFER

    def _wants_read(self, p, side):
        if side.eof or (side is p.upstream and p.connecting):
            return False
        if self._mode == BLACKHOLE:
            return True
        if self._mode in _FORWARDING:
            return len(side.buf) < self._read_cap()
        return False  # PAUSE holds; REFUSE has no connections

    def _throttle_wait(self, direction, pending):
        """0 when a write may go now, else the seconds until a worthwhile one may."""
        if not self._buckets:
            return 0
        b = self._buckets[direction]
        if b.available() >= min(pending, b.capacity):
            return 0
        return max(0.001, b.seconds_until(pending))

    def _accept(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                               errno.ECONNABORTED):
                    return
                raise
            with self._cond:
                self.connections_accepted += 1
                refused = self._mode == REFUSE or len(self._pairs) >= MAX_CONNECTIONS
                if refused:
                    self.connections_refused += 1
                self._cond.notify_all()
            if refused:
                _abort(sock)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            p = _Pair(sock)
            self._pairs.append(p)
            if self._mode in _FORWARDING:
                self._connect_upstream(p)

    def _connect_upstream(self, p):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex(self.target)
        p.upstream = _Side(s)
        if rc in (0, errno.EISCONN):
            p.connecting = False
        elif rc in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            p.connecting = True
        else:
            self._kill_pair(p)

    def _kill_pair(self, p):
        """Abort both sockets with RST (buffered data is dropped)."""
        for side in (p.client, p.upstream):
            if side is not None:
                self.bytes_dropped += len(side.buf)
                side.buf.clear()
                _abort(side.sock)
                side.sock = None
        p.dead = True

    def _close_pair(self, p):
        for side in (p.client, p.upstream):
            if side is not None:
                _close(side.sock)
                side.sock = None
        p.dead = True

    def _service(self, p, side, ev):
        if side is p.upstream and p.connecting:
            err = side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._kill_pair(p)  # target refused / unreachable: reset the client
            elif ev & _OUT:
                p.connecting = False
            return
        if self._mode == PAUSE:
            if ev & (_RDHUP | _ERR):
                side.peer_closed = True  # held: nothing is read; see _check_finished
            return
        peer = p.upstream if side is p.client else p.client
        if ev & (_IN | _ERR) and self._wants_read(p, side):
            if not self._read(p, side):
                return
        if ev & (_OUT | _ERR) and peer is not None and peer.buf and self._mode in _FORWARDING:
            if not self._write(p, side, peer.buf):
                return
        self._propagate_eof(p)

    def _read(self, p, side):
        """Read from side; False when the pair died."""
        if self._mode == BLACKHOLE:
            want = CHUNK
        else:
            want = max(1, min(CHUNK, self._read_cap() - len(side.buf)))
        try:
            data = side.sock.recv(want)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            if self._mode == BLACKHOLE:
                side.eof = side.errored = True  # the other side hears of it on resume
                return True
            self._kill_pair(p)  # reset (or error) from one side: reset the other
            return False
        if not data:
            side.eof = True
            return True
        if self._mode == BLACKHOLE:
            self.bytes_dropped += len(data)
        else:
            side.buf += data
        return True

    def _write(self, p, side, buf):
        """Write buf (read from the other side) to side; False when the pair died."""
        direction = self._direction_to(p, side)
        n = len(buf)
        if self._buckets:
            n = min(n, self._buckets[direction].available())
            if n <= 0:
                return True
        try:
            sent = side.sock.send(memoryview(buf)[:n])
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            self._kill_pair(p)
            return False
        del buf[:sent]
        if self._buckets:
            self._buckets[direction].take(sent)
        with self._cond:
            if direction == "up":
                self.bytes_up += sent
            else:
                self.bytes_down += sent
        return True

    def _propagate_eof(self, p):
        """Pass a FIN on once everything before it was delivered; close a finished pair."""
        if p.dead or self._mode not in _FORWARDING or p.upstream is None or p.connecting:
            return
        if p.client.errored or p.upstream.errored:
            self._kill_pair(p)  # a reset seen during blackhole, passed on now
            return
        for src, dst in ((p.client, p.upstream), (p.upstream, p.client)):
            if src.eof and not src.buf and not dst.shut_wr:
                try:
                    dst.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                dst.shut_wr = True
        if p.client.shut_wr and p.upstream.shut_wr:
            self._close_pair(p)

    def _check_finished(self, p):
        """Forwarding: pass on EOFs and resets noticed while held. Held (pause / blackhole):
        drop a pair whose every peer has gone (closed or reset) -- nobody can observe it."""
        if self._mode in _FORWARDING:
            self._propagate_eof(p)
            return
        sides = [p.client] + ([p.upstream] if p.upstream is not None else [])
        if all(s.eof or s.peer_closed for s in sides):
            self._kill_pair(p)

    def _cleanup(self):
        for p in self._pairs:
            self._kill_pair(p)
        self._pairs = []
        _close(self._listener)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


class _NoPeer:
    """Stands in for the upstream side before it exists: nothing buffered."""
    buf = b""


_NO_PEER = _NoPeer()
