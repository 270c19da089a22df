"""Device liveness: status messages (applied in batches), last_seen stamps, and silent beds."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from homecare.contract import DeviceKind, Status
from homecare.mqtt import MqttLink

from . import edge_store
from .announce import Announcer
from .cache import DeviceCache
from .edge_store import StatusUpdate
from .metrics import STATUS_BATCHES, STATUS_WRITE
from .registry import DeviceRef
from .rejections import Rejections

log = logging.getLogger(__name__)

Task = Callable[[], None]
Attempt = Callable[[Task, Task | None], None]


@dataclass(frozen=True)
class PendingStatus:
    update: StatusUpdate
    message: mqtt.MQTTMessage
    replayed: bool  # a retained last will replayed on subscribe: an unknown device is not told


def rounds(batch: list[PendingStatus]) -> list[list[PendingStatus]]:
    """Split a batch into rounds with at most one status per device, keeping each device's
    statuses in order: a device that went offline and online again in one batch makes two
    transitions, each announced."""
    out: list[list[PendingStatus]] = []
    depth: dict[str, int] = {}
    for pending in batch:
        n = depth.get(pending.update.device_id, 0)
        depth[pending.update.device_id] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(pending)
    return out


class Liveness:
    """Tracks whether devices are online, offline or silent, and announces each transition.

    Statuses are gathered on the worker thread and written a batch at a time: one transaction
    (one statement per round), then each transition is announced, and each message acknowledged
    once its effect is committed and its announcement, if any, stored in the log. Until then the device
    counts as heard, so the silence sweep never marks a bed whose messages are still queued here.
    """

    def __init__(
        self, link: MqttLink, pool: ConnectionPool, announcer: Announcer, rejections: Rejections,
        cache: DeviceCache, window_s: float = 0.05, max_batch: int = 200,
    ):
        self._link = link
        self._pool = pool
        self._announcer = announcer
        self._rejections = rejections
        self._cache = cache
        self._window = window_s
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}
        # Messages received and not yet dealt with, by device (network and worker threads).
        self._heard: Counter[str] = Counter()
        self._batch: list[PendingStatus] = []  # worker thread only
        self._due: float | None = None

    # -- what the silence sweep must not overlook ------------------------------------------

    def received(self, device_id: str) -> None:
        """A message of this device arrived (network thread) and waits for the worker."""
        with self._lock:
            self._heard[device_id] += 1

    def handled(self, device_id: str) -> None:
        """That message is dealt with: written, buffered by `seen`, or rejected."""
        with self._lock:
            left = self._heard[device_id] - 1
            if left > 0:
                self._heard[device_id] = left
            else:
                del self._heard[device_id]

    def reset(self) -> None:
        """A new connection: whatever was queued is gone, and the broker will redeliver it."""
        with self._lock:
            self._heard.clear()
        self._batch, self._due = [], None

    def seen(self, device_id: str, at: datetime) -> None:
        """Note that a device spoke; written to the database by the next flush, not now."""
        with self._lock:
            previous = self._seen.get(device_id)
            if previous is None or at > previous:
                self._seen[device_id] = at

    # -- statuses ---------------------------------------------------------------------------

    def status(
        self, device_id: str, status: Status, message: mqtt.MQTTMessage, at: datetime,
        replayed: bool = False,
    ) -> None:
        """Queue a valid status for the next batch (worker thread)."""
        self.received(device_id)  # heard until its batch is committed
        if not self._batch:
            self._due = time.monotonic() + self._window
        update = StatusUpdate(device_id, status.online, status.fw, status.battery, status.rssi, at)
        self._batch.append(PendingStatus(update, message, replayed))

    def due_in(self) -> float | None:
        """Seconds until the batch must be written; None when there is none."""
        return None if self._due is None else max(0.0, self._due - time.monotonic())

    def take(self, idle: bool) -> list[PendingStatus]:
        """The batch to write now: when the worker has nothing else to do (`idle`), the batch is
        full, or its oldest status has waited the window; else nothing."""
        if not self._batch:
            return []
        if idle or len(self._batch) >= self._max_batch or time.monotonic() >= (self._due or 0.0):
            batch, self._batch, self._due = self._batch, [], None
            return batch
        return []

    def write(self, batch: list[PendingStatus], attempt: Attempt) -> None:
        """Write a batch with the worker's retry policy; a batch that keeps failing for some
        other reason than the database being away is tried status by status."""
        STATUS_BATCHES.observe(len(batch))
        with STATUS_WRITE.time():
            attempt(lambda: self.apply(batch), lambda: self._one_by_one(batch, attempt))

    def _one_by_one(self, batch: list[PendingStatus], attempt: Attempt) -> None:
        for pending in batch:
            attempt(lambda p=pending: self.apply([p]), lambda p=pending: self._give_up(p))

    def _give_up(self, pending: PendingStatus) -> None:
        try:  # the device is told, the message acknowledged: it must not stay in flight
            self._rejections.reject(pending.message, pending.update.device_id, "internal",
                                    "payload: the gateway could not process this message")
        finally:
            self.handled(pending.update.device_id)

    def apply(self, batch: list[PendingStatus]) -> None:
        """Commit a batch, then announce its transitions and acknowledge its messages.

        Idempotent: run again after a failure, what was committed changes nothing and is only
        acknowledged (an announcement lost meanwhile is owed, and the sweep makes it).
        """
        steps = rounds(batch)
        with self._pool.connection() as conn:
            results = [edge_store.record_statuses(conn, [p.update for p in step], self._cache.shard)
                       for step in steps]
        refs: dict[str, DeviceRef] = {}
        for step, result in zip(steps, results, strict=True):
            for pending in step:
                self._applied(pending, result.get(pending.update.device_id), refs)
        self._cache.remember(list(refs.values()))

    def _applied(
        self, pending: PendingStatus, applied: edge_store.StatusApplied | None,
        refs: dict[str, DeviceRef],
    ) -> None:
        device_id, message = pending.update.device_id, pending.message
        self.handled(device_id)  # its row is committed: last_seen is in the database
        if applied is None:  # unknown, revoked, or on another shard
            if pending.replayed:
                return self._link.ack(message)
            ref = self._cache.get(device_id)
            if ref is not None and self._cache.shard is not None and ref.shard != self._cache.shard:
                return self._rejections.wrong_shard(message, device_id, ref.shard, self._cache.shard)
            return self._rejections.unknown_device(message, device_id)
        if not pending.replayed:
            refs[device_id] = DeviceRef(device_id, DeviceKind(applied.kind), applied.resident_id, applied.shard)
        if applied.change is None:
            return self._link.ack(message)
        self._announcer.device_state(applied.change, then=lambda: self._link.ack(message))

    # -- periodic work (housekeeper) --------------------------------------------------------

    def flush(self, pool: ConnectionPool) -> None:
        """Write buffered last_seen stamps in one statement; announce devices that came back."""
        with self._lock:
            seen, self._seen = self._seen, {}
        if not seen:
            return
        try:
            with pool.connection() as conn:
                revived = edge_store.touch(conn, seen)
        except Exception:
            with self._lock:  # keep the stamps for the next flush
                for device_id, at in seen.items():
                    previous = self._seen.get(device_id)
                    if previous is None or at > previous:
                        self._seen[device_id] = at
            raise
        for state in revived:
            self._announcer.device_state(state)

    def sweep(self, pool: ConnectionPool, intervals: int, min_s: int) -> None:
        """Mark beds that stopped reporting as silent; not those with messages still queued
        here or stamps not yet written (the flush runs just before, but the worker goes on)."""
        with self._lock:
            heard = set(self._heard) | set(self._seen)
        with pool.connection() as conn:
            silent = edge_store.mark_silent(conn, intervals, min_s, sorted(heard), self._cache.shard)
        for state in silent:
            log.warning("bed %s fell silent", state.device_id, extra={"device_id": state.device_id})
            self._announcer.device_state(state)
