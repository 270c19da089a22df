"""Announcements of state changes into the internal log, with the outbox marks they owe.

A state change is committed first (its row then differs from what was announced); the
announcement is published, and once the log has stored it the row is marked announced. A crash in
between leaves the row owed, and the sweep announces it again. Consumers treat a repeat as a
no-op, so at-least-once is enough.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from homecare.internal import DeviceState
from homecare.log import Log

from . import edge_store

log = logging.getLogger(__name__)

Then = Callable[[], None] | None


class Announcer:
    """Publishes DeviceState, and records which were stored."""

    def __init__(self, log_: Log):
        self._log = log_
        self._lock = threading.Lock()
        self._devices: list[tuple[str, str, float | None]] = []

    def device_state(self, state: DeviceState, then: Then = None) -> None:
        """Publish a device's liveness transition; `then` runs once the log has stored it."""

        def done() -> None:
            with self._lock:
                self._devices.append((state.device_id, state.state, state.battery))
            if then is not None:
                then()

        log.info("device %s is %s", state.device_id, state.state,
                 extra={"device_id": state.device_id, "state": state.state})
        self._log.publish(self._log.subjects.state(state.device_id), state.dumps(), done)

    def flush(self, pool: ConnectionPool) -> None:
        """Mark the acknowledged announcements in the database."""
        with self._lock:
            devices, self._devices = self._devices, []
        if not devices:
            return
        try:
            with pool.connection() as conn:
                edge_store.mark_announced(conn, devices)
        except Exception:
            with self._lock:
                self._devices[:0] = devices
            raise

    def resend_owed(self, pool: ConnectionPool, older_than_s: int, shard: str | None = None) -> int:
        """Announce again every change not confirmed within older_than_s (of `shard`'s devices
        when given: the broker this gateway bridges); returns how many."""
        with pool.connection() as conn:
            devices = edge_store.unannounced_states(conn, older_than_s, shard=shard)
        for state in devices:
            self.device_state(state)
        if devices:
            log.info("re-announced %d device states", len(devices))
        return len(devices)
