"""Background upkeep: the daily sample partitions exist ahead of the samples."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from .settings import TelemetrySettings
from .store import ensure_partitions

log = logging.getLogger(__name__)

_RETRY_S = 60.0


class PartitionKeeper:
    """Creates missing daily partitions at start and then every partition_check_s."""

    def __init__(self, pool: ConnectionPool, config: TelemetrySettings):
        self._pool = pool
        self._config = config
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, today: datetime | None = None) -> int:
        """Ensure the partitions around today (UTC) exist; how many were created."""
        day = (today or datetime.now(UTC)).astimezone(UTC).date()
        first = day - timedelta(days=self._config.partitions_behind_days)
        days = self._config.partitions_behind_days + 1 + self._config.partitions_ahead_days
        with self._pool.connection() as conn, conn.transaction():
            created = ensure_partitions(conn, first, days)
        if created:
            log.info("created %d sample partitions", created)
        return created

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
                log.warning("could not create sample partitions: %s", exc)
                wait = min(_RETRY_S, self._config.partition_check_s)
            self._stopping.wait(wait)
