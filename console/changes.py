"""Request changes from PostgreSQL to every open board: one LISTEN connection, many subscribers.

Dispatch NOTIFYs the channel with a request id inside each transaction that changes a request,
so a notification arrives only once its change is committed and readable. The listener runs in
a thread on a dedicated autocommit connection (a pooled one would lose the LISTEN on return)
and reconnects with backoff; after every (re)connect subscribers are told to resync, because
notifications sent while no one listened are gone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

RESYNC = "*resync*"  # queued instead of an id: reload everything (not a valid request id)
CLOSED = "*closed*"  # queued when the console stops: end the stream
ALERT = "alert:"  # the tag of alert ids (telemetry's channel), so they never pass for request ids
APPLICATION_NAME = "homecare-console-listen"  # names the connection in pg_stat_activity
_QUEUE_LIMIT = 1000
_LIVENESS_S = 15.0  # a silent network drop shows up on the next query, so query now and then


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue of changed request ids (or RESYNC), filled from the listener thread."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(_QUEUE_LIMIT))

    def offer(self, item: str) -> None:
        """Enqueue on the subscriber's loop; a subscriber that lags far behind just resyncs."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSED if item == CLOSED else RESYNC)

    async def next_batch(self, timeout: float, coalesce: float) -> list[str]:
        """The items that arrived within `coalesce` seconds of the first; [] after `timeout`."""
        try:
            first = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return []
        if coalesce:
            await asyncio.sleep(coalesce)
        items = [first]
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


class ChangeHub:
    """LISTENs on a channel and fans each payload out to the subscriptions."""

    def __init__(
        self, conninfo: str, channel: str, reconnect_max_s: float = 10.0, tagged: dict[str, str] | None = None,
    ):
        self._conninfo = conninfo
        self._channel = channel
        # More channels on the same connection; their payloads are published as tag + payload.
        self._tagged = dict(tagged or {})
        self._reconnect_max_s = reconnect_max_s
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening.is_set()

    def start(self, wait_s: float = 5.0) -> None:
        """Start the listener thread; wait a little for the first LISTEN, not forever."""
        if self._thread and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="console-listen", daemon=True)
        self._thread.start()
        if not self._listening.wait(wait_s):
            log.warning("console is not listening on %s yet; it keeps trying", self._channel)

    def stop(self) -> None:
        """Stop listening and end every subscriber's stream."""
        self._stopping.set()
        if self._thread:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            _deliver(sub, CLOSED)

    def subscribe(self) -> Subscription:
        """A new subscription on the calling coroutine's event loop."""
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription (its stream ended)."""
        with self._lock:
            self._subs.discard(sub)

    def publish(self, item: str) -> None:
        """Hand an id (or RESYNC) to every subscriber; safe from any thread."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if not _deliver(sub, item):
                self.unsubscribe(sub)

    def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self._listen()
                delay = 0.5
            except psycopg.Error as exc:
                log.warning("LISTEN %s connection lost: %s; retrying in %.1fs",
                            self._channel, exc, delay)
            except Exception:  # never let the thread die: boards would freeze silently
                log.exception("LISTEN %s failed; retrying in %.1fs", self._channel, delay)
            finally:
                self._listening.clear()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, self._reconnect_max_s)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                             application_name=APPLICATION_NAME) as conn:
            for channel in (self._channel, *self._tagged):
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.publish(RESYNC)  # whatever changed while we were away
            self._listening.set()
            log.info("listening on %s", self._channel)
            checked = time.monotonic()
            while not self._stopping.is_set():
                for note in conn.notifies(timeout=0.5):
                    self.publish(self._tagged.get(note.channel, "") + note.payload)
                if time.monotonic() - checked > _LIVENESS_S:
                    conn.execute("SELECT 1")
                    checked = time.monotonic()


def _deliver(sub: Subscription, item: str) -> bool:
    """Schedule the item on the subscriber's loop; False when that loop is gone."""
    try:
        sub.loop.call_soon_threadsafe(sub.offer, item)
        return True
    except RuntimeError:  # loop closed: the subscriber is gone
        return False
