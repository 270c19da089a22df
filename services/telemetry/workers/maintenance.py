"""Background upkeep: daily sample partitions exist ahead of the samples; old partitions and
rollup rows go when their retention ends (plain PostgreSQL), or TimescaleDB's policies get the
configured values and their jobs are watched."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from psycopg_pool import ConnectionPool

from homecare.api.health import Degraded
from homecare.db.migrate import Flavour, current_flavour
from services.telemetry import metrics
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store import rollups, timescale
from services.telemetry.store.jobs import JobState, read_jobs
from services.telemetry.store.samples import drop_partitions, ensure_partitions

log = logging.getLogger(__name__)

_RETRY_S = 60.0


@dataclass(frozen=True)
class Upkeep:
    """What one round of upkeep did."""

    created: int = 0
    dropped: int = 0
    pruned_1m: int = 0
    pruned_1h: int = 0


class _Rounds:
    """Upkeep in rounds on a thread of its own: `_round` does one and says how long to wait
    before the next."""

    thread_name = "telemetry-upkeep"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _round(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._stopping.wait(self._round())


class PartitionKeeper(_Rounds):
    """Creates missing daily partitions and applies retention at start and then every partition_check_s."""

    thread_name = "telemetry-partitions"

    def __init__(self, pool: ConnectionPool, config: TelemetrySettings):
        super().__init__()
        self._pool = pool
        self._config = config
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

    def _round(self) -> float:
        try:
            self.run_once()
            return self._config.partition_check_s
        except Exception as exc:  # the DEFAULT partition takes samples meanwhile
            log.warning("telemetry upkeep failed: %s", exc)
            return min(_RETRY_S, self._config.partition_check_s)


class JobWatch(_Rounds):
    """TimescaleDB: reads the policy jobs every `job_check_s`, exports each one's last success and
    failure, and keeps the problems (a failed last run, no success for twice the interval) for
    readiness, which reports them as degraded. Does nothing on plain PostgreSQL."""

    thread_name = "telemetry-jobs"

    def __init__(self, pool: ConnectionPool, config: TelemetrySettings):
        super().__init__()
        self._pool = pool
        self._config = config
        self._watched_since: datetime | None = None
        self._problems: tuple[str, ...] = ()

    def check_once(self, now: datetime | None = None) -> list[str]:
        """Read the jobs; the problems now (also kept for `readiness`)."""
        now = now or datetime.now(UTC)
        with self._pool.connection() as conn:
            jobs = read_jobs(conn) if current_flavour(conn) is Flavour.TIMESCALE else []
        if self._watched_since is None:
            self._watched_since = now
        problems = []
        for job in jobs:
            problem = job.problem(now, self._watched_since)
            _export(job, problem)
            if problem:
                problems.append(problem)
        if tuple(problems) != self._problems:
            for problem in problems:
                log.warning("TimescaleDB job: %s", problem)
            if self._problems and not problems:
                log.info("TimescaleDB jobs: every one succeeding again")
        self._problems = tuple(problems)
        return problems

    def notices(self) -> list[str]:
        """The console banner's lines: one per job with a problem."""
        return [f"Database upkeep needs an administrator: {problem}." for problem in self._problems]

    def readiness(self) -> bool | Degraded:
        """Ready either way (a replica cannot fix the server's jobs); degraded while one has a problem."""
        return Degraded(self._problems) if self._problems else True

    def _round(self) -> float:
        try:
            self.check_once()
        except Exception as exc:  # the database away: the next check tells
            log.warning("reading TimescaleDB's jobs failed: %s", exc)
        return self._config.job_check_s


def _export(job: JobState, problem: str | None) -> None:
    labels = (str(job.job_id), job.proc_name, job.target)
    metrics.JOB_LAST_SUCCESS.labels(*labels).set(job.last_success.timestamp() if job.last_success else 0)
    metrics.JOB_LAST_FAILURE.labels(*labels).set(job.last_failure.timestamp() if job.last_failure else 0)
    metrics.JOB_PROBLEM.labels(*labels).set(1 if problem else 0)
