"""Periodic work of the edge: write buffered stamps and marks, detect silence, re-announce."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from psycopg_pool import ConnectionPool

from . import edge_store
from .settings import GatewaySettings
from .worker import TRANSIENT

if TYPE_CHECKING:
    from .edge import Edge

log = logging.getLogger(__name__)



class Housekeeper:
    """A thread that flushes every `flush_interval_s` and sweeps every `sweep_interval_s`.

    Each step runs on its own: one that fails (database away) keeps its data for the next round
    and does not hold up the others. Sweeps are single UPDATE statements, so several replicas
    sweeping at once never do a transition twice.
    """

    def __init__(self, edge: Edge, pool: ConnectionPool, config: GatewaySettings):
        self._edge = edge
        self._pool = pool
        self._config = config
        self._sweeps = edge.lane.sweeps  # the periodic jobs of this lane (see gateway.edge.Lane)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"gateway-{self._edge.lane.name}-housekeeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, after one last flush of what is buffered."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stopping.wait(self._config.flush_interval_s):
            self.flush()
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + self._config.sweep_interval_s
                self.sweep()

    def flush(self) -> None:
        """Write buffered last_seen stamps, PUBACK marks and rejection tallies."""
        edge = self._edge
        self._step("flush last_seen", lambda: edge.liveness.flush(self._pool))
        self._step("flush announcements", lambda: edge.announcer.flush(self._pool))
        self._step("flush rejections", lambda: edge.rejections.flush(self._pool))

    def sweep(self) -> None:
        """Time-driven transitions, and repair of what a crash may have left undone."""
        edge, config, sweeps = self._edge, self._config, self._sweeps
        if "revoked" in sweeps:
            self._step("invalidate revoked devices", self._invalidate_revoked)
        if "silent" in sweeps:
            self._step("detect silent beds", lambda: edge.liveness.sweep(
                self._pool, config.silent_after_intervals, config.silent_min_s))
        if "announce" in sweeps:
            self._step("re-announce", lambda: edge.announcer.resend_owed(
                self._pool, config.announce_retry_s, edge.cache.shard))

    def _invalidate_revoked(self) -> None:
        # Another process (an API replica) may have revoked a device this replica has cached.
        window = int(self._config.sweep_interval_s * 2) + 60
        with self._pool.connection() as conn:
            for device_id in edge_store.recently_revoked(conn, window):
                self._edge.cache.invalidate(device_id)

    @staticmethod
    def _step(what: str, step) -> None:
        try:
            step()
        except TRANSIENT as exc:
            log.warning("gateway housekeeping postponed (%s): database unavailable: %s", what, exc)
        except Exception:
            log.exception("gateway housekeeping failed: %s", what)
