"""Publishes the outbox: woken by NOTIFY, polling as a fallback. A row is marked sent once the
broker acknowledged it (PUBACK); rows go out in the order they were written, by one replica at
a time. A crash between PUBACK and the mark re-sends a command with the same command_id, which
the gateway de-duplicates."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from homecare.contract.models import CommandType
from homecare.mqtt import MqttLink

from .. import metrics
from ..store import outbox

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(self, pool: ConnectionPool, link: MqttLink, *, poll_s: float = 1.0, puback_timeout_s: float = 10.0,
                 batch_size: int = 100):
        self.pool = pool
        self.link = link
        self.poll_s = poll_s
        self.puback_timeout_s = puback_timeout_s
        self.batch_size = batch_size
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dispatch-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        listener: psycopg.Connection | None = None
        while not self._stopping.is_set():
            try:
                if listener is None or listener.closed:
                    conninfo = self.pool.conninfo() if callable(self.pool.conninfo) else self.pool.conninfo
                    listener = psycopg.connect(conninfo, autocommit=True)
                    listener.execute(f"LISTEN {outbox.OUTBOX_CHANNEL}")
                self.drain()
                for _ in listener.notifies(timeout=self.poll_s, stop_after=1):
                    pass
            except psycopg.OperationalError as exc:
                log.warning("outbox publisher lost the database: %s", exc)
                if listener is not None:
                    listener.close()
                listener = None
                self._stopping.wait(self.poll_s)
            except Exception:
                log.exception("outbox publisher round failed")
                self._stopping.wait(self.poll_s)
        if listener is not None:
            listener.close()

    def drain(self) -> int:
        """Publish unsent rows until none are left (or the broker is away); returns how many."""
        total = 0
        while not self._stopping.is_set() and self.link.connected:
            sent, complete = self._publish_batch()
            total += sent
            if not complete:
                break
        return total

    def _publish_batch(self) -> tuple[int, bool]:
        """(rows marked sent, whether to go on with the next batch)."""
        with self.pool.connection() as conn, conn.transaction():
            if not outbox.lead(conn):
                return 0, False  # another replica is publishing
            rows = outbox.unsent(conn, self.batch_size)
            if not rows:
                return 0, False
            done = [threading.Event() for _ in rows]
            for row, event in zip(rows, done, strict=True):
                self.link.publish(row["topic"], json.dumps(row["payload"]).encode(), qos=1, on_done=event.set)
            deadline = time.monotonic() + self.puback_timeout_s
            acked = []
            for row, event in zip(rows, done, strict=True):
                # Only the acknowledged prefix is marked, so what is re-sent keeps its order.
                if not event.wait(max(0.0, deadline - time.monotonic())):
                    break
                acked.append(row)
            outbox.mark_sent(conn, [r["id"] for r in acked])
        self._observe(acked)
        if len(acked) < len(rows):
            log.warning("broker acknowledged %d of %d outbox messages; retrying later", len(acked), len(rows))
        return len(acked), len(acked) == len(rows)

    @staticmethod
    def _observe(rows: list[dict]) -> None:
        now = datetime.now(UTC)
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(row["kind"]).inc()
            if row["kind"] == CommandType.ACKNOWLEDGED.value and row["origin_at"] is not None:
                metrics.PRESS_TO_ACK.observe(max(0.0, (now - row["origin_at"]).total_seconds()))
