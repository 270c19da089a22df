"""Publishes the outbox straight to devices: each command goes QoS 1 to the device's `commands`
topic on its broker shard, where its persistent session keeps it while the device is away. Woken
by NOTIFY, polling as a fallback; one replica at a time, rows in the order they were written.

A row is marked sent once the broker acknowledged it (PUBACK), in a commit that does not wait for
the disk: the next round (the next press's answer) must not wait for it either, and a mark lost
in a database crash is the case below. Of each device's rows only the
acknowledged prefix is marked, so what is published again keeps the device's order. A crash
between the PUBACK and the mark publishes a command again with the same command_id; the device
shows the same thing twice, and its second ack is a repeat."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from homecare.contract.models import CommandType
from homecare.db.wal import commit_without_waiting
from homecare.mqtt import MqttLink

from .. import metrics
from ..store import outbox
from ..usecases import delivery
from ..usecases.context import Dispatch

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(self, pool: ConnectionPool, ctx: Dispatch, links: Mapping[str, MqttLink], *, poll_s: float = 1.0,
                 puback_timeout_s: float = 10.0, batch_size: int = 100):
        self.pool = pool
        self.ctx = ctx
        self.links = links  # by shard name
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
        """Publish unsent commands until none are left that can go now; returns how many."""
        total = 0
        while not self._stopping.is_set():
            sent, complete = self._publish_batch()
            total += sent
            if not complete:
                break
        return total

    def _publish_batch(self) -> tuple[int, bool]:
        """(commands marked sent, whether to go on with the next batch)."""
        # Only shards whose broker is connected: one shard down must not hold up the others.
        up = [name for name, link in self.links.items() if link.connected]
        if not up:
            return 0, False
        with self.pool.connection() as conn, conn.transaction():
            commit_without_waiting(conn)
            rows = outbox.unsent(conn, up, self.batch_size)
            if not rows:
                return 0, False  # nothing to publish, or another replica is publishing
            unpublished: set[str] = set()  # devices with a row that cannot go now: not their later ones
            waiting: list[tuple[outbox.Publishable, threading.Event]] = []
            for row in rows:
                link = self.links[row.shard]
                if row.device_id in unpublished or not link.connected:
                    unpublished.add(row.device_id)
                    continue
                done = threading.Event()
                link.publish(row.topic, json.dumps(row.payload).encode(), qos=1, on_done=done.set)
                waiting.append((row, done))
            deadline = time.monotonic() + self.puback_timeout_s
            acked: list[outbox.Publishable] = []
            unacked: set[str] = set()
            for row, done in waiting:  # in the order written: each device's acknowledged prefix
                if row.device_id in unacked:
                    continue
                if done.wait(max(0.0, deadline - time.monotonic())):
                    acked.append(row)
                else:
                    unacked.add(row.device_id)
            delivery.sent(conn, self.ctx, [row.id for row in acked], datetime.now(UTC))
        self._observe(acked)
        if len(acked) < len(rows):
            log.warning("published %d of %d commands; the rest wait for their broker", len(acked), len(rows))
        return len(acked), len(acked) == len(rows)

    @staticmethod
    def _observe(rows: list[outbox.Publishable]) -> None:
        now = datetime.now(UTC)
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(row.kind).inc()
            if row.kind == CommandType.ACKNOWLEDGED.value and row.origin_at is not None:
                metrics.PRESS_TO_ACK.observe(max(0.0, (now - row.origin_at).total_seconds()))
