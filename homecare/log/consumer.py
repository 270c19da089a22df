"""The one consumer runtime of the platform: fetch a batch from a durable JetStream consumer,
handle it, acknowledge it once its effect is committed. One loop type, one retry policy, one
acknowledgement rule, for every service.

- A batch that fails is tried again message by message, so one bad message never holds back
  the others.
- With `lanes`, messages are not handled as batches: each goes to one of `lanes` threads by its
  device (the subject's last token), is handled alone and acknowledged when done, and the
  fetching goes on meanwhile. A device's messages keep their order; a slow one (a stuck
  button's tenth press, a transaction waiting for a lock) holds back only its own lane, never a
  whole batch and the fetch after it.
- A message that fails on its own is handed back (`nak`) with a growing delay; once it has been
  delivered `max_deliveries` times it goes to the dead-letter stream with the reason and is
  acknowledged, so it never blocks the consumer.
- A handler may commit without waiting for the disk and return a `Durable`: the message is then
  acknowledged once its effect is on disk (checked every few milliseconds, off the handling
  threads), and handled again if the effect was lost (EffectLost: the database restarted first).
- A transient failure (the database away) is not the message's fault: the batch is kept, its
  acknowledgement deadline extended, and tried again until it works or the runtime stops.
- Lag, acknowledgements pending and the age of the oldest unacknowledged message are read from
  the server every few seconds (`health`, as the console reads them); readiness fails when that
  age passes `stuck_after_s`, a limit the consumer's description carries on the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import psycopg
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import APIError
from psycopg_pool import PoolTimeout

from homecare.errors import EffectLost

from . import health, metrics
from .client import Log
from .streams import StreamSpec

log = logging.getLogger(__name__)

_DURABLE_POLL_S = 0.005  # how often messages waiting for their effect to reach the disk are checked
_DURABLE_ON_STOP_S = 3.0  # stopping: how long to wait for them before leaving them to redelivery



def system_fault(exc: BaseException) -> bool:
    """Whether a failure is not the message's fault: the database restarts, fails over or is out
    of connections, or refuses every statement (a migration not applied). Such a batch is held
    and tried again, never dead-lettered, and readiness reports it once it lasts. Of the
    database's refusals only values it cannot take (DataError, IntegrityError) are the message's."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer: every replica of a service pulls from the same one."""

    durable: str
    stream: StreamSpec
    filter_subject: str = ""  # within the stream; empty: all of it
    batch: int = 100
    fetch_wait_s: float = 0.5  # how long one fetch waits for messages
    max_ack_pending: int = 2000  # delivered and unacknowledged, over all replicas
    # Redelivered (to another replica) when not acknowledged by then: how long a SIGKILLed
    # replica's batch waits. The runtime extends it while it holds a batch for a transient fault.
    ack_wait_s: float = 10.0
    max_deliveries: int = 5  # then dead-lettered
    stuck_after_s: float = health.STUCK_AFTER_S  # readiness: the oldest unacknowledged message is older
    workers: int = 1  # threads of this replica fetching and handling batches; >1 gives up the order of handling
    lanes: int = 0  # >0: one fetching thread and this many handling threads, one message at a time (see above)
    # What it carries, for the console's dispatchers: a plural ("Button presses" are delayed).
    title: str = ""


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it."""

    subject: str
    data: bytes
    headers: dict[str, str]
    deliveries: int  # 1 on the first delivery
    stream_seq: int
    stored_at: datetime
    msg: Msg


@runtime_checkable
class Durable(Protocol):
    """What a handler returns when its effect is committed but may not be on disk yet (an
    asynchronous commit): `durable()` is true once it is, and raises EffectLost if it never
    will be."""

    def durable(self) -> bool: ...


# Handles a batch: returns None once its effect is durable, or a Durable to wait for.
Handler = Callable[[Sequence[Delivery]], "Durable | None"]


class PermanentError(Exception):
    """A message that will never be handled, whatever is retried: dead-lettered at once."""


class Consumer:
    """Runs a handler over a durable consumer, on `spec.workers` threads of this replica."""

    def __init__(self, log_: Log, spec: ConsumerSpec, handler: Handler,
                 transient: Callable[[BaseException], bool] = system_fault, monitor_s: float = 2.0):
        self.log = log_
        self.spec = spec
        self.handler = handler
        self.transient = transient
        self.monitor_s = monitor_s
        self.name = f"{log_.namespace.lower()}-{spec.durable}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sub = None
        self._monitor: concurrent.futures.Future | None = None
        self.oldest_unacked_s = 0.0
        self.lag = 0
        self.handled = 0  # messages this replica finished (for tests and logs)
        self._returned: list[Delivery] = []  # fetched while stopping: handed back by stop()
        self._count = threading.Lock()
        self._lanes: list[queue.SimpleQueue[Delivery | None]] = []
        # Messages fetched and not yet handled, over all lanes: fetching waits while it is full.
        self._room = threading.BoundedSemaphore(max(1, spec.batch))
        # Handled, committed, waiting for the disk before their acknowledgement (oldest first).
        self._undurable: list[_Undurable] = []
        self._undurable_changed = threading.Condition()
        self._handlers_done = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create or bind the durable consumer and start pulling."""
        self._stopping.clear()
        self._sub = self.log.call(self._subscribe(), 15)
        metrics.STUCK_AFTER.labels(self.spec.durable).set(self.spec.stuck_after_s)
        self._monitor = self.log.spawn(self._watch())
        if self.spec.lanes > 0:
            self._room = threading.BoundedSemaphore(max(1, self.spec.batch))
            self._lanes = [queue.SimpleQueue() for _ in range(self.spec.lanes)]
            self._threads = [threading.Thread(target=self._run, args=(self._into_lanes,),
                                              name=f"consume-{self.spec.durable}", daemon=True)]
            self._threads += [
                threading.Thread(target=self._lane, args=(lane,), name=f"consume-{self.spec.durable}-{n}", daemon=True)
                for n, lane in enumerate(self._lanes)
            ]
        else:
            self._threads = [
                threading.Thread(target=self._run, args=(self._handle_batch,), name=f"consume-{self.spec.durable}-{n}",
                                 daemon=True)
                for n in range(max(1, self.spec.workers))
            ]
        self._handlers_done.clear()
        self._undurable = []  # left by an earlier run to redelivery
        self._threads.append(threading.Thread(target=self._ack_when_durable, name=f"durable-{self.spec.durable}",
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batches in hand and stop; what was fetched and not handled is handed back."""
        self._stopping.set()
        if self._lanes:  # the fetching thread first: nothing is put in a lane after its end
            self._threads[0].join(timeout)
            for lane in self._lanes:
                lane.put(None)  # after what is queued, which the stopping lane hands back
        handlers, acker = self._threads[:-1], self._threads[-1:]
        for thread in handlers:
            thread.join(timeout)
        self._handlers_done.set()  # what they left waiting for the disk: acknowledged, or redelivered
        for thread in acker:
            thread.join(timeout)
        self._threads = []
        self._lanes = []
        if self._returned:
            # Only once this replica's pull requests have expired: JetStream would deliver a
            # message handed back earlier to one of them, a dead end until the ack wait is over.
            time.sleep(self.spec.fetch_wait_s + 0.2)
            returned, self._returned = self._returned, []
            self._nak(returned)
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None

    def ready(self) -> bool:
        """False while the oldest unacknowledged message is older than `stuck_after_s`."""
        return self.oldest_unacked_s <= self.spec.stuck_after_s

    def config(self) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            durable_name=self.name,
            description=health.describe(self.spec.title or self.spec.durable, self.spec.stuck_after_s),
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            filter_subject=self.spec.filter_subject or None,
            ack_wait=self.spec.ack_wait_s,
            max_ack_pending=self.spec.max_ack_pending,
            # The runtime dead-letters on the last delivery; the server's limit is a backstop.
            max_deliver=self.spec.max_deliveries + 1,
        )

    async def _subscribe(self):
        stream = self.log.stream(self.spec.stream)
        try:  # creates it, or brings a changed setting (ack wait, pending limit) to it
            await self.log.js.add_consumer(stream, self.config())
        except APIError as exc:  # a setting the server cannot change in place: keep the old one
            log.warning("%s: consumer settings not updated: %s", self.name, exc)
        return await self.log.js.pull_subscribe_bind(self.name, stream=stream)

    # -- the loop --------------------------------------------------------------------------

    def _run(self, take: Callable[[list[Delivery]], None]) -> None:
        """The one loop: fetch, and hand each batch to `take` (handle it, or share it out to
        the lanes)."""
        while not self._stopping.is_set():
            try:
                batch = self._fetch()
            except Exception as exc:  # the log away: the client reconnects by itself
                log.warning("%s: fetch failed: %s", self.name, exc)
                self._stopping.wait(0.5)
                continue
            if batch:
                take(batch)

    def _into_lanes(self, batch: list[Delivery]) -> None:
        for delivery in batch:
            if self._take_room():
                self._lanes[_lane_of(delivery, len(self._lanes))].put(delivery)
            else:
                self._hand_back([delivery])  # stopping while the lanes were full

    def _take_room(self) -> bool:
        """Wait until the lanes have room for one more message; False when stopping."""
        while not self._room.acquire(timeout=0.5):
            if self._stopping.is_set():
                return False
        return True

    def _lane(self, lane: queue.SimpleQueue) -> None:
        while (delivery := lane.get()) is not None:
            try:
                if self._stopping.is_set():
                    self._hand_back([delivery])
                    continue
                self._waited([delivery])
                started = time.perf_counter()
                self._settle([delivery], self._attempt([delivery]))
                metrics.HANDLE_SECONDS.labels(self.spec.durable).observe(time.perf_counter() - started)
            finally:
                self._room.release()

    def _fetch(self) -> list[Delivery]:
        wait = self.spec.fetch_wait_s
        try:
            msgs = self.log.call(self._sub.fetch(self.spec.batch, timeout=wait), wait + 5)
        except TimeoutError:
            return []
        return [_delivery(m) for m in msgs]

    def _waited(self, batch: list[Delivery]) -> None:
        """How long first deliveries waited in the log before this consumer started on them."""
        now = datetime.now(UTC)
        for delivery in batch:
            if delivery.deliveries == 1:
                wait = max((now - delivery.stored_at).total_seconds(), 0.0)
                metrics.WAIT_SECONDS.labels(self.spec.durable).observe(wait)

    def _handle_batch(self, batch: list[Delivery]) -> None:
        self._waited(batch)
        started = time.perf_counter()
        outcome = self._attempt(batch)
        if isinstance(outcome, _Failed) and len(batch) > 1:
            for delivery in batch:  # find the message at fault; the others go through
                if self._stopping.is_set():
                    self._hand_back([delivery])
                    continue
                self._settle([delivery], self._attempt([delivery]))
        else:
            self._settle(batch, outcome)
        metrics.HANDLE_SECONDS.labels(self.spec.durable).observe(time.perf_counter() - started)

    def _attempt(self, batch: list[Delivery]):
        """Handle a batch until it is done, fails, or the runtime stops (transient failures)."""
        pause = 0.2
        while True:
            try:
                waiting = self.handler(batch)
                # Anything but a Durable (None, or a value a handler returned by the way) means done.
                return _Later(waiting) if isinstance(waiting, Durable) else _DONE
            except PermanentError as exc:
                return _Failed(str(exc), permanent=True)
            except Exception as exc:
                if self.transient(exc):
                    if self._stopping.is_set():
                        return _STOPPED
                    log.warning("%s: unavailable, retrying in %.1f s: %s", self.name, pause, exc)
                    self._progress(batch)
                    if self._stopping.wait(pause):
                        return _STOPPED
                    pause = min(pause * 2, 10.0)
                    continue
                if len(batch) == 1:
                    log.warning("%s: message %s failed (delivery %d): %r", self.name, batch[0].subject,
                                batch[0].deliveries, exc, extra={"payload": batch[0].data[:200]})
                return _Failed(f"{type(exc).__name__}: {exc}"[:500])

    def _settle(self, batch: list[Delivery], outcome) -> None:
        if outcome is _DONE:
            self._ack(batch, "done")
        elif isinstance(outcome, _Later):
            with self._undurable_changed:
                self._undurable.append(_Undurable(batch, outcome.waiting))
                self._undurable_changed.notify()
        elif outcome is _STOPPED:
            self._hand_back(batch)
        else:  # a single message that failed
            delivery = batch[0]
            if outcome.permanent or delivery.deliveries >= self.spec.max_deliveries:
                self._dead_letter(delivery, outcome.reason)
            else:
                delay = min(0.5 * 2 ** (delivery.deliveries - 1), 30.0)
                self._call(delivery.msg.nak(delay=delay))
                metrics.CONSUMED.labels(self.spec.durable, "retried").inc()

    def _ack(self, batch: list[Delivery], outcome: str) -> None:
        async def ack_all() -> None:
            for delivery in batch:
                await delivery.msg.ack()

        self._call(ack_all())
        metrics.CONSUMED.labels(self.spec.durable, outcome).inc(len(batch))
        with self._count:
            self.handled += len(batch)

    def _ack_when_durable(self) -> None:
        """Acknowledge handled messages whose effects have reached the disk, in the order they
        were handled; extend the acknowledgement deadline of those still waiting; hand back those
        whose effect was lost. Stopping, waits a little for the rest, then leaves them to be
        redelivered (their effects, if kept, make the second handling a no-op)."""
        gave_up_at: float | None = None
        while True:
            with self._undurable_changed:
                while not self._undurable and not self._handlers_done.is_set():
                    self._undurable_changed.wait(0.5)
                waiting = list(self._undurable)
            if not waiting:
                return  # the handlers are done and nothing waits
            if self._handlers_done.is_set():
                gave_up_at = gave_up_at or time.monotonic() + _DURABLE_ON_STOP_S
                if time.monotonic() > gave_up_at:
                    log.info("%s: %d messages left to redelivery, their effects not yet on disk", self.name,
                             len(waiting))
                    return
            settled = self._settle_durable(waiting)
            if settled:
                with self._undurable_changed:
                    self._undurable = [u for u in self._undurable if u not in settled]
            if len(settled) < len(waiting):
                time.sleep(_DURABLE_POLL_S)

    def _settle_durable(self, waiting: list[_Undurable]) -> list[_Undurable]:
        settled = []
        for item in waiting:
            try:
                durable = item.waiting.durable()
            except EffectLost as exc:
                log.warning("%s: %d messages to handle again: %s", self.name, len(item.batch), exc)
                self._nak(item.batch)
                metrics.CONSUMED.labels(self.spec.durable, "retried").inc(len(item.batch))
                settled.append(item)
                continue
            except Exception as exc:  # the database away: wait (the deadline is extended meanwhile)
                log.debug("%s: cannot tell whether effects are on disk: %s", self.name, exc)
                durable = False
            if durable:
                self._ack(item.batch, "done")
                settled.append(item)
            elif time.monotonic() - item.extended > self.spec.ack_wait_s / 2:
                item.extended = time.monotonic()
                self._progress(item.batch)
        return settled

    def _hand_back(self, batch: list[Delivery]) -> None:
        """Stopping: another replica (or the next start) gets these at once, not after ack_wait
        (handed back by stop(), once the fetches are over)."""
        with self._count:
            self._returned.extend(batch)

    def _nak(self, batch: list[Delivery]) -> None:
        async def nak_all() -> None:
            for delivery in batch:
                await delivery.msg.nak()

        self._call(nak_all())

    def _progress(self, batch: list[Delivery]) -> None:
        async def in_progress() -> None:
            for delivery in batch:
                await delivery.msg.in_progress()

        self._call(in_progress())

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Keep the message, with why and where it came from, then let the consumer move on."""
        headers = {
            "Homecare-Consumer": self.spec.durable,
            "Homecare-Subject": delivery.subject,
            "Homecare-Stream-Seq": str(delivery.stream_seq),
            "Homecare-Deliveries": str(delivery.deliveries),
            "Homecare-Reason": reason.replace("\r", " ").replace("\n", " ")[:500],
            "Homecare-Failed-At": datetime.now(UTC).isoformat(),
        }
        try:
            self.log.publish_wait(self.log.subjects.dead(self.spec.durable), delivery.data, 10, headers)
        except Exception as exc:  # the log away: hand it back, it comes again
            log.warning("%s: could not dead-letter %s: %s", self.name, delivery.subject, exc)
            self._call(delivery.msg.nak(delay=5))
            return
        log.error("%s: dead-lettered %s after %d deliveries: %s", self.name, delivery.subject,
                  delivery.deliveries, reason)
        metrics.DEAD_LETTERED.labels(self.spec.durable).inc()
        self._ack([delivery], "dead-lettered")

    def _call(self, coroutine) -> None:
        try:
            self.log.call(coroutine, 10)
        except Exception as exc:  # an ack lost: the message comes again, handlers are idempotent
            log.warning("%s: acknowledgement not sent: %s", self.name, exc)

    # -- monitoring --------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            try:
                await self._measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("%s: consumer info: %s", self.name, exc)
            await asyncio.sleep(self.monitor_s)

    async def _measure(self) -> None:
        stream = self.log.stream(self.spec.stream)
        info = await self.log.js.consumer_info(stream, self.name)
        self.lag = info.num_pending or 0
        metrics.LAG.labels(self.spec.durable).set(self.lag)
        metrics.ACK_PENDING.labels(self.spec.durable).set(info.num_ack_pending or 0)
        age = await health.oldest_unacked_age(self.log.js, stream, info)
        self.oldest_unacked_s = age
        metrics.OLDEST_AGE.labels(self.spec.durable).set(age)
        if age > self.spec.stuck_after_s:
            log.error("%s: oldest unacknowledged message is %.0f s old (limit %.0f s)",
                      self.name, age, self.spec.stuck_after_s)


@dataclass(frozen=True)
class _Failed:
    reason: str
    permanent: bool = False


@dataclass(frozen=True)
class _Later:
    waiting: Durable


@dataclass(eq=False)
class _Undurable:
    batch: list[Delivery]
    waiting: Durable
    extended: float = field(default_factory=time.monotonic)  # when its ack deadline was last pushed back


_DONE = object()
_STOPPED = object()


def _lane_of(delivery: Delivery, lanes: int) -> int:
    """A device's lane: its id is the last token of every device subject."""
    return zlib.crc32(delivery.subject.rsplit(".", 1)[-1].encode()) % lanes


def _delivery(msg: Msg) -> Delivery:
    meta = msg.metadata
    return Delivery(
        subject=msg.subject, data=msg.data, headers=dict(msg.headers or {}),
        deliveries=meta.num_delivered, stream_seq=meta.sequence.stream, stored_at=meta.timestamp, msg=msg,
    )


__all__ = ["Consumer", "ConsumerSpec", "Delivery", "Durable", "Handler", "PermanentError", "system_fault"]
