"""Ingest of Internal.TELEMETRY: batch messages for a short window, write them in one
transaction, and ack them only after the commit. Writer threads do the work (while one waits
on the database, another parses and sends the next window); the paho callback only queues the
message. Windows are acked in the order their messages arrived, whichever commits first."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from homecare.topics import Internal

from . import metrics
from .acks import AckGate, AckOrder, Receipt
from .samples import BadMessage, Parsed, parse_for_copy
from .settings import TelemetrySettings
from .store import WriteResult, write_parsed

log = logging.getLogger(__name__)

# Errors that a given message causes whatever we retry: it is dropped, not retried forever.
_PERMANENT = (psycopg.DataError, psycopg.IntegrityError)


@dataclass
class _Item:
    receipt: Receipt
    rows: Parsed | None  # None: unparseable, acked with its window to keep ack order


class TelemetryIngest:
    """Writes received TelemetryBatches to the database, at least once, each sample once."""

    def __init__(self, pool: ConnectionPool, gate: AckGate, config: TelemetrySettings,
                 on_stored: Callable[[], None] | None = None):
        self._pool = pool
        self._on_stored = on_stored  # told after a commit that stored new samples
        self._gate = gate
        self._config = config
        self._queue: queue.Queue[Receipt] = queue.Queue()
        self._stopping = threading.Event()
        self._collecting = threading.Lock()  # one writer collects a window at a time
        self._acks = AckOrder(gate)
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer threads."""
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"telemetry-writer-{n}", daemon=True)
            for n in range(self._config.writers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Write what is queued once more (no retries), then stop; the rest stays un-acked."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    # -- paho callback -----------------------------------------------------------------------

    def on_message(self, client, message) -> None:
        """Queue a message for the writer (runs on the paho network thread)."""
        self._queue.put(self._gate.receipt(message))

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._step(wait=0.2)
        # Stopping: one last attempt for what already arrived, so it is not left to a restart.
        self._step(wait=0)

    def _step(self, wait: float) -> None:
        with self._collecting:
            window = self._collect(wait)
            ticket = self._acks.ticket() if window else -1
        if window:
            self._process(ticket, window)

    def _collect(self, wait: float) -> list[_Item]:
        """Messages of one window: from the first one, for batch_window_ms or batch_max_rows."""
        try:
            first = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        window = [self._parse(first)]
        rows = len(window[0].rows or ())
        deadline = time.monotonic() + self._config.batch_window_ms / 1000
        while rows < self._config.batch_max_rows:
            remaining = deadline - time.monotonic()
            try:
                receipt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            item = self._parse(receipt)
            window.append(item)
            rows += len(item.rows or ())
        return window

    def _parse(self, receipt: Receipt) -> _Item:
        try:
            return _Item(receipt, parse_for_copy(receipt.message.payload))
        except BadMessage as exc:
            metrics.MESSAGES_REJECTED.labels(Internal.TELEMETRY, "unparseable").inc()
            log.warning(
                "dropping telemetry message: %s", exc,
                extra={"payload": bytes(receipt.message.payload[:200])},
            )
            return _Item(receipt, None)

    def _process(self, ticket: int, window: list[_Item]) -> None:
        """Store the window's samples, then ack its messages (after earlier windows' acks)."""
        if not self._store([item for item in window if item.rows]):
            return  # stopping: left un-acked (and the windows after it), the broker redelivers them
        self._acks.done(ticket, [item.receipt for item in window])

    def _store(self, items: list[_Item]) -> bool:
        """Write until every item is stored or rejected; False when stopped before that."""
        groups = [items] if items else []
        delay = self._config.retry_min_s
        while groups:
            group = groups[0]
            try:
                self._write(_merged(group))
            except _PERMANENT as exc:
                metrics.WRITE_ERRORS.inc()
                if len(group) == 1:
                    metrics.MESSAGES_REJECTED.labels(Internal.TELEMETRY, "unstorable").inc()
                    log.error(
                        "dropping telemetry message the database refuses: %s", exc,
                        extra={"payload": bytes(group[0].receipt.message.payload[:200])},
                    )
                    groups.pop(0)
                else:  # find the message at fault: write one by one
                    groups[0:1] = [[item] for item in group]
                continue
            except Exception as exc:
                metrics.WRITE_ERRORS.inc()
                if self._stopping.is_set():
                    log.warning("telemetry write failed while stopping: %s", exc)
                    return False
                log.warning("telemetry write failed, retrying in %.1fs: %s", delay, exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._config.retry_max_s)
                continue
            groups.pop(0)
            delay = self._config.retry_min_s
        return True

    def _write(self, rows: Parsed) -> WriteResult:
        began = time.perf_counter()
        with self._pool.connection() as conn, conn.transaction():
            result = write_parsed(conn, rows)
        metrics.WRITE_SECONDS.observe(time.perf_counter() - began)
        metrics.BATCH_SAMPLES.observe(result.received)
        metrics.SAMPLES_STORED.inc(result.stored)
        metrics.SAMPLES_DUPLICATE.inc(result.duplicates)
        if result.stored and self._on_stored is not None:
            self._on_stored()
        return result


def _merged(items: list[_Item]) -> Parsed:
    if len(items) == 1 and items[0].rows is not None:
        return items[0].rows
    merged = Parsed()
    for item in items:
        if item.rows is not None:
            merged.extend(item.rows)
    return merged
