"""Background upkeep: daily sample partitions exist ahead of the samples; old partitions and
rollup rows go when their retention ends (plain PostgreSQL), or TimescaleDB's policies get the
configured values."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from psycopg_pool import ConnectionPool

from homecare.db.migrate import Flavour, current_flavour

from . import rollups, timescale
from .settings import TelemetrySettings
from .store import drop_partitions, ensure_partitions

log = logging.getLogger(__name__)

_RETRY_S = 60.0


@dataclass(frozen=True)
class Upkeep:
    """What one round of upkeep did."""

    created: int = 0
    dropped: int = 0
    pruned_1m: int = 0
    pruned_1h: int = 0


class PartitionKeeper:
    """Creates missing daily partitions and applies retention at start and then every partition_check_s."""

    def __init__(self, pool: ConnectionPool, config: TelemetrySettings):
        self._pool = pool
        self._config = config
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._policies_applied = False

    def run_once(self, today: datetime | None = None) -> Upkeep:
        """Ensure the partitions around today (UTC) exist and apply retention."""
        now = (today or datetime.now(UTC)).astimezone(UTC)
        day = now.date()
        first = day - timedelta(days=self._config.partitions_behind_days)
        days = self._config.partitions_behind_days + 1 + self._config.partitions_ahead_days
        with self._pool.connection() as conn, conn.transaction():
            created = ensure_partitions(conn, first, days)
            if current_flavour(conn) is Flavour.TIMESCALE:
                if not self._policies_applied:
                    timescale.apply_policies(conn, self._config)
                    self._policies_applied = True
                return Upkeep(created=created)
            upkeep = Upkeep(created, *self._retention(conn, now))
        if upkeep.created or upkeep.dropped:
            log.info("sample partitions: %d created, %d dropped", upkeep.created, upkeep.dropped)
        return upkeep

    def _retention(self, conn, now: datetime) -> tuple[int, int, int]:
        # In whole UTC days, as the raw samples go (a daily partition at a time): with equal
        # retentions a day's minutes never go before its samples, whatever the hour of the run.
        config = self._config
        midnight = datetime.combine(now.date(), time.min, tzinfo=UTC)
        dropped = pruned_1m = pruned_1h = 0
        if config.raw_retention_days:
            dropped = drop_partitions(conn, now.date() - timedelta(days=config.raw_retention_days))
        if config.rollup_1m_retention_days:
            pruned_1m = rollups.prune(conn, "vitals_1m", midnight - timedelta(days=config.rollup_1m_retention_days))
        if config.rollup_1h_retention_days:
            pruned_1h = rollups.prune(conn, "vitals_1h", midnight - timedelta(days=config.rollup_1h_retention_days))
        return dropped, pruned_1m, pruned_1h

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry-partitions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
                wait = self._config.partition_check_s
            except Exception as exc:  # the DEFAULT partition takes samples meanwhile
                log.warning("telemetry upkeep failed: %s", exc)
                wait = min(_RETRY_S, self._config.partition_check_s)
            self._stopping.wait(wait)
