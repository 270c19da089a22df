"""One connection to the internal log (NATS JetStream), run by an asyncio loop on a thread of its
own, so that the platform's threaded code (paho callbacks, psycopg use cases) can publish to it
and consume from it without an event loop of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from homecare.topics import Subjects

from . import metrics
from .streams import ALL, StreamSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


_NO_PEERS_FOR_PLACEMENT = 10005  # JetStream's err_code: fewer peers up than the stream's replicas


def _cluster_not_ready(exc: BaseException) -> bool:
    """JetStream unavailable (503, no meta leader yet), its API not answering in time, or not
    enough peers for a stream's replicas: the cluster is forming, not misconfigured."""
    if isinstance(exc, ServiceUnavailableError | nats.errors.TimeoutError | TimeoutError):
        return True
    return isinstance(exc, APIError) and exc.err_code == _NO_PEERS_FOR_PLACEMENT


@dataclass(eq=False)  # identity: kept in a set while unacknowledged
class _Publish:
    subject: str
    payload: bytes
    headers: dict[str, str] | None
    on_done: Callable[[], None] | None
    attempts: int = 0
    deadline: float = 0.0
    future: asyncio.Future | None = field(default=None, repr=False)


class Log:
    """The platform's handle on the log: streams made sure of at start, publishes that are retried
    until JetStream acknowledges them (stored on a quorum of the stream's replicas), and a way to
    run the consumer runtime's coroutines on this connection."""

    def __init__(
        self, url: str, name: str, namespace: str = "HC", replicas: int = 1, *,
        publish_timeout_s: float = 5.0, max_pending: int = 4000,
    ):
        if not url:
            raise ValueError("HOMECARE_NATS_URL is not set: the internal log needs a NATS server")
        self.servers = [u.strip() for u in url.split(",") if u.strip()]
        self.name = name
        self.namespace = namespace
        self.replicas = replicas
        self.subjects = Subjects(namespace)
        self._publish_timeout = publish_timeout_s
        self._max_pending = max_pending
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._queue: deque[_Publish] = deque()
        self._waiting: set[_Publish] = set()
        self._draining = False
        self._lock = threading.Lock()
        self._stopping = False
        self._sweeper: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Connect (trying until `timeout`) and make sure every stream exists as configured."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop.run_forever, name=f"log-{self.name}", daemon=True)
            self._thread.start()
        deadline = time.monotonic() + timeout
        self.call(self._connect(timeout), timeout + 5)
        while True:
            try:
                self.call(self.ensure_streams(), timeout)
                break
            except Exception as exc:
                # A cluster still forming (its nodes starting together, one restarting) has no
                # meta leader or too few peers for the replicas yet: wait for it, as for a
                # server that is not up yet, instead of failing the component's start.
                if not _cluster_not_ready(exc) or time.monotonic() >= deadline:
                    raise
                log.warning("log %s: JetStream not ready for the streams yet (%s); trying again", self.name, exc)
                time.sleep(0.5)
        self._loop.call_soon_threadsafe(self._start_sweeper)

    def stop(self, timeout: float = 5.0) -> None:
        """Wait a little for publishes in flight, then close the connection and the loop."""
        if self._thread is None:
            return
        self._stopping = True
        deadline = time.monotonic() + timeout
        while (self._queue or self._waiting) and time.monotonic() < deadline and self.connected:
            time.sleep(0.02)
        try:
            self.call(self._close(), timeout)
        except Exception as exc:  # closing a connection that is already gone
            log.debug("log %s: close: %s", self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop.close()
        self._loop = asyncio.new_event_loop()  # a later start() gets a fresh one
        self._nc = self._js = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> NATS:
        """The NATS connection itself (core subscriptions: what is published, as it is)."""
        if self._nc is None:
            raise RuntimeError("the log is not started")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the log is not started")
        return self._js

    def stream(self, spec: StreamSpec) -> str:
        """The name of one of the streams in this deployment's namespace."""
        return spec.stream_name(self.namespace)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run a coroutine on the log's loop without waiting for it (cancel the future to stop it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def call(self, coroutine: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the log's loop and wait for its result (from any other thread)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    async def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._nc = await nats.connect(
                    servers=self.servers, name=self.name, connect_timeout=2, allow_reconnect=True,
                    max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
                break
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"log {self.name}: no NATS server at {self.servers}: {exc}") from exc
                await asyncio.sleep(0.5)
        self._js = self._nc.jetstream(timeout=self._publish_timeout, publish_async_max_pending=self._max_pending)

    async def _close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            try:  # what was sent last (the acks and naks of a stopping consumer) must go out
                await asyncio.wait_for(self._nc.flush(), 2)
            except Exception as exc:
                log.debug("log %s: flush before close: %s", self.name, exc)
            try:
                await asyncio.wait_for(self._nc.close(), 3)
            except Exception as exc:
                log.debug("log %s: close: %s", self.name, exc)
        # Nothing may be left running on a loop that is about to stop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _disconnected(self) -> None:
        if not self._stopping:
            log.warning("log %s: disconnected from NATS", self.name)

    async def _reconnected(self) -> None:
        log.info("log %s: reconnected to NATS at %s", self.name, self._nc.connected_url.netloc if self._nc else "?")

    async def _error(self, exc: Exception) -> None:
        log.warning("log %s: %s", self.name, exc)

    async def ensure_streams(self) -> None:
        """Create each stream, or bring an existing one to the configured subjects, age and replicas."""
        for spec in ALL:
            config = api.StreamConfig(
                name=self.stream(spec), subjects=[self.subjects.of_stream(spec.token)],
                retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE,
                max_age=spec.max_age_s, num_replicas=self.replicas, allow_direct=True,
            )
            try:
                info = await self.js.stream_info(config.name)
            except NotFoundError:
                await self.js.add_stream(config)
                log.info("log: stream %s created", config.name)
                continue
            current = info.config
            if (current.subjects, current.max_age, current.num_replicas) != (
                config.subjects, config.max_age, config.num_replicas
            ):
                await self.js.update_stream(config)
                log.info("log: stream %s updated", config.name)

    # -- publishing ----------------------------------------------------------------------------

    def publish(
        self, subject: str, payload: bytes, on_done: Callable[[], None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Store a message in the log; `on_done` runs (on the log's thread) once JetStream has it.

        Thread-safe and never blocks. A publish with no acknowledgement in time, or refused, is
        tried again until it is stored: the caller keeps its input unacknowledged meanwhile, so
        nothing is lost while the log is away, and a message stored twice (an ack lost on the
        way) is de-duplicated by its consumers.
        """
        item = _Publish(subject, payload, headers, on_done)
        with self._lock:
            self._queue.append(item)
            wake = not self._draining
            self._draining = True
        metrics.PUBLISH_PENDING.inc()
        if wake:
            self._loop.call_soon_threadsafe(self._drain_soon)

    def publish_wait(
        self, subject: str, payload: bytes, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        """Store a message and wait until JetStream has it (TimeoutError when it does not in time)."""
        done = threading.Event()
        self.publish(subject, payload, done.set, headers)
        if not done.wait(timeout):
            raise TimeoutError(f"the log did not store {subject} within {timeout:g} s")

    def pending(self) -> int:
        """Publishes not yet acknowledged by the log."""
        return len(self._queue) + len(self._waiting)

    def _drain_soon(self) -> None:
        self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._draining = False
                        return
                    item = self._queue.popleft()
                await self._send(item)
        except BaseException:
            with self._lock:
                self._draining = False
            raise

    async def _send(self, item: _Publish) -> None:
        item.attempts += 1
        item.deadline = self._loop.time() + self._publish_timeout
        self._waiting.add(item)
        try:
            item.future = await self.js.publish_async(item.subject, item.payload, headers=item.headers)
        except Exception as exc:  # not connected, buffer full: the sweeper sends it again
            log.debug("log %s: publish to %s not sent: %s", self.name, item.subject, exc)
            item.deadline = self._loop.time() + min(0.1 * item.attempts, 2.0)
            return
        item.future.add_done_callback(lambda future, item=item: self._settled(item, future))

    def _settled(self, item: _Publish, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                log.warning("log %s: publish to %s refused: %s", self.name, item.subject, future.exception())
            item.future = None
            item.deadline = self._loop.time() + min(0.1 * item.attempts, 2.0)
            return  # the sweeper sends it again
        self._waiting.discard(item)
        metrics.PUBLISH_PENDING.dec()
        metrics.PUBLISHED.labels(item.subject.split(".", 2)[1]).inc()
        if item.on_done is not None:
            try:
                item.on_done()
            except Exception:
                log.exception("log %s: completion of a publish to %s failed", self.name, item.subject)

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self._loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Publishes without an acknowledgement by their deadline go out again."""
        while True:
            await asyncio.sleep(0.25)
            now = self._loop.time()
            late = [item for item in self._waiting if item.deadline <= now]
            for item in late:
                if item.future is not None and not item.future.done():
                    item.future.cancel()  # its late ack, if any, is ignored
                item.future = None
                self._waiting.discard(item)
                metrics.PUBLISH_RETRIES.inc()
                if item.attempts in (3, 10) or item.attempts % 50 == 0:
                    log.warning("log %s: publish to %s not acknowledged after %d tries",
                                self.name, item.subject, item.attempts)
                if not self.connected:
                    self._waiting.add(item)
                    item.deadline = now + 0.5
                    continue
                await self._send(item)

