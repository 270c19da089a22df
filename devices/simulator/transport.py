"""One thread drives many paho MQTT clients: a selector over their sockets and a timer heap.

paho 2.x lets an application own the event loop: it reports the socket it opens and closes
(`on_socket_open`, `on_socket_close`) and when it has bytes to write (`on_socket_register_write`,
`on_socket_unregister_write`); the loop then calls `loop_read`, `loop_write` and `loop_misc`.
Thousands of device connections then cost one thread, not one each. Everything that touches a
client runs on the loop thread; other threads hand work over with `call_soon_threadsafe`.

At ten thousand connections three things matter: connecting must not block the loop
(`DeviceClient` connects without binding and without waiting), a write should not cost two
epoll_ctl calls (queued packets are written at the end of the loop pass, and only a socket that
could not take everything waits for EVENT_WRITE), and keep-alive checks are spread over the
second instead of visiting every client at once.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import heapq
import itertools
import logging
import resource
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 2.0  # keep-alive checks (loop_misc) visit every client this often
MISC_SLICE_S = 0.1  # ... a slice of the clients every 100 ms
MAX_WAIT_S = 0.1
_IN_PROGRESS = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY}


class DeviceClient(mqtt.Client):
    """A paho client whose TCP connect never blocks the loop.

    paho's own connect is `socket.create_connection` with a source address: a blocking connect,
    and a `bind` to port 0 that searches the ephemeral ports (about 1 ms each at ten thousand
    open connections). Here the socket is non-blocking from the start; paho queues CONNECT and
    the loop writes it once the socket is writable. A refused connection surfaces as a lost
    connection on that write, and the session's reconnect logic takes over.
    """

    def _create_socket_connection(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex((self._host, self._port))
        if err not in _IN_PROGRESS:
            sock.close()
            raise OSError(err, f"connect to {self._host}:{self._port}: {errno.errorcode.get(err, err)}")
        return sock


@dataclass(eq=False)
class Timer:
    """A scheduled call; `cancel()` before it runs and it never does."""

    when: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class DeviceLoop:
    """An event loop for many MQTT clients, run by one thread."""

    def __init__(self, name: str = "device-loop"):
        self.name = name
        self._selector = selectors.DefaultSelector()
        # (when, seq, timer): tuples compare natively, which matters at thousands of timers a second
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._inbox: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._clients: dict[mqtt.Client, None] = {}  # insertion-ordered, for the keep-alive slices
        self._misc_queue: deque[mqtt.Client] = deque()
        self._to_write: dict[mqtt.Client, None] = {}  # packets queued during this pass
        self._write_waiting: set[mqtt.Client] = set()  # registered for EVENT_WRITE
        self._thread: threading.Thread | None = None
        self._running = False
        self.callback_errors = 0
        self.lag_s = 0.0  # how late timers run, smoothed: the loop keeping up or not
        self._lag_max_s = 0.0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in its own thread."""
        if self._thread is not None:
            raise RuntimeError("loop already started")
        self._running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop thread (clients should be closed first) and release the selector."""
        if self._thread is None:
            return
        self.call_soon_threadsafe(self._halt)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("%s did not stop within %ss", self.name, timeout)
            return
        self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def take_lag_max(self) -> float:
        """The worst timer lateness (seconds) since the last call."""
        worst, self._lag_max_s = self._lag_max_s, 0.0
        return worst

    # -- scheduling ---------------------------------------------------------------------------

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop thread soon; callable from any thread."""
        self._inbox.append(fn)
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Run `fn` on the loop thread after `delay` seconds; call from the loop thread."""
        timer = Timer(time.monotonic() + max(0.0, delay), fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    # -- clients ------------------------------------------------------------------------------

    def attach(self, client: mqtt.Client) -> None:
        """Let this loop drive the client's socket; call before connecting it."""
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._clients[client] = None

    def detach(self, client: mqtt.Client) -> None:
        self._clients.pop(client, None)
        self._to_write.pop(client, None)
        self._write_waiting.discard(client)

    def forget_socket(self, sock: socket.socket) -> None:
        """Stop watching a socket the caller is about to close behind paho's back."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    @property
    def open_sockets(self) -> int:
        """Client sockets registered right now."""
        return len(self._selector.get_map()) - 1

    def _on_socket_open(self, client: mqtt.Client, userdata, sock) -> None:
        try:
            self._selector.register(sock, selectors.EVENT_READ, client)
        except KeyError:  # already registered (a reconnect reusing the descriptor)
            self._selector.modify(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, client: mqtt.Client, userdata, sock) -> None:
        self._to_write.pop(client, None)
        self._write_waiting.discard(client)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, userdata, sock) -> None:
        # Written at the end of this pass; the selector is asked only if the socket is full.
        self._to_write[client] = None

    def _on_unregister_write(self, client: mqtt.Client, userdata, sock) -> None:
        self._to_write.pop(client, None)
        if client in self._write_waiting:
            self._write_waiting.discard(client)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.modify(sock, selectors.EVENT_READ, client)

    def _flush_writes(self) -> None:
        while self._to_write:
            client = next(iter(self._to_write))
            del self._to_write[client]
            sock = client.socket()
            if sock is None:
                continue
            self._guard(client.loop_write)
            if client.want_write() and client.socket() is sock and client not in self._write_waiting:
                self._write_waiting.add(client)
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    # -- the loop -----------------------------------------------------------------------------

    def _halt(self) -> None:
        self._running = False

    def _run(self) -> None:
        next_misc = time.monotonic() + MISC_SLICE_S
        while self._running:
            now = time.monotonic()
            wait = MAX_WAIT_S
            if self._timers:
                wait = min(wait, max(0.0, self._timers[0][0] - now))
            if self._inbox:
                wait = 0.0
            for key, mask in self._selector.select(wait):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        self._wake_r.recv(4096)
                    continue
                client: mqtt.Client = key.data
                if mask & selectors.EVENT_READ:
                    self._guard(client.loop_read)
                if mask & selectors.EVENT_WRITE and client.socket() is not None:
                    self._guard(client.loop_write)
            while self._inbox:
                self._guard(self._inbox.popleft())
            self._run_timers()
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + MISC_SLICE_S
                self._misc_slice()
            self._flush_writes()

    def _misc_slice(self) -> None:
        """Keep-alive checks for the next slice of clients: all of them every MISC_INTERVAL_S."""
        if not self._misc_queue:
            self._misc_queue.extend(self._clients)
        per_slice = max(1, int(len(self._clients) * MISC_SLICE_S / MISC_INTERVAL_S) + 1)
        for _ in range(min(per_slice, len(self._misc_queue))):
            client = self._misc_queue.popleft()
            if client in self._clients:
                self._guard(client.loop_misc)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                late = now - timer.when
                self.lag_s = 0.99 * self.lag_s + 0.01 * late
                if late > self._lag_max_s:
                    self._lag_max_s = late
                self._guard(timer.fn)

    def _guard(self, fn: Callable[[], object]) -> None:
        # paho re-raises exceptions from callbacks; one device's fault must not stop the others.
        try:
            fn()
        except Exception:
            self.callback_errors += 1
            log.exception("%s: callback failed", self.name)


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files towards `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def settle_garbage(collect: bool = True) -> None:
    """Collect (optionally), then keep everything alive now out of future collections.

    Ten thousand sessions are millions of long-lived objects; a full collection visiting them
    takes half a second, during which no device is served. Frozen objects are never visited.
    """
    if collect:
        gc.collect()
    gc.freeze()
