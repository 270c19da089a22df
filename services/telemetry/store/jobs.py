"""TimescaleDB's policy jobs (aggregate refresh, compression, retention), watched and run by hand.

The policies run in the server's background workers, which can fail for reasons of the server's
own (on PostgreSQL 15.20 every TimescaleDB job fails with "cannot drop portal"): then rollups go
stale, chunks stay uncompressed and old data is never dropped, and nothing else would notice.
So the service reads each of its jobs' last success and failure (`timescaledb_information`) and
counts a job as a problem when its last run failed, or when it has not succeeded for twice its
interval. `run_due` runs the jobs that are due in the foreground (`homecare telemetry run-jobs`,
for servers whose background workers cannot) and records each run in `telemetry.job_runs`, since
the server's job statistics count background runs only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from homecare.db.migrate import error_reason

log = logging.getLogger(__name__)

# Our jobs only: the policies of the telemetry schema's hypertables and continuous aggregates.
# `-infinity` (never) is read as NULL. A foreground run of ours counts as the job's run.
_JOBS = """
SELECT j.job_id, j.proc_name, j.hypertable_name AS target, j.schedule_interval,
       greatest(nullif(s.last_successful_finish, '-infinity'), r.last_ok) AS last_success,
       greatest(CASE WHEN s.last_run_status = 'Failed' THEN s.last_run_started_at END, r.last_failed)
           AS last_failure,
       coalesce(r.last_error, e.err_message) AS last_error,
       CASE
           WHEN r.last_at IS NOT NULL AND (s.last_run_started_at IS NULL OR r.last_at >= s.last_run_started_at)
               THEN r.last_ok_run
           ELSE s.last_run_status IS DISTINCT FROM 'Failed'
       END AS last_run_ok
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN LATERAL (
    SELECT err_message FROM timescaledb_information.job_errors x
    WHERE x.job_id = j.job_id ORDER BY x.start_time DESC LIMIT 1
) e ON true
LEFT JOIN LATERAL (
    SELECT max(finished_at) FILTER (WHERE error IS NULL) AS last_ok,
           max(started_at) FILTER (WHERE error IS NOT NULL) AS last_failed,
           (array_agg(error ORDER BY started_at DESC) FILTER (WHERE error IS NOT NULL))[1] AS last_error,
           max(started_at) AS last_at,
           (array_agg(error IS NULL ORDER BY started_at DESC))[1] AS last_ok_run
    FROM telemetry.job_runs x WHERE x.job_id = j.job_id
) r ON true
WHERE j.hypertable_schema = 'telemetry'
ORDER BY j.job_id
"""

_RECORD = """
INSERT INTO telemetry.job_runs (job_id, proc_name, target, started_at, finished_at, error)
VALUES (%s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class JobState:
    """One policy job: what it does, how often, and how its runs went."""

    job_id: int
    proc_name: str
    target: str
    interval: timedelta
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str | None
    last_run_ok: bool

    @property
    def name(self) -> str:
        """`policy_retention on bed_samples`."""
        return f"{self.proc_name} on {self.target}"

    def due(self, now: datetime) -> bool:
        """Its interval has passed since it last succeeded (or it never has)."""
        return self.last_success is None or now - self.last_success >= self.interval

    def problem(self, now: datetime, watched_since: datetime) -> str | None:
        """Why this job needs an operator, or None: its last run failed, or it has not succeeded
        for twice its interval (counted from `watched_since` when it never has)."""
        if not self.last_run_ok and self.last_failure is not None:
            reason = self.last_error or "no reason given"
            return f"{self.name} failed at {self.last_failure:%Y-%m-%d %H:%M} UTC: {reason}"
        since = self.last_success or watched_since
        if now - since >= 2 * self.interval:
            when = f"since {self.last_success:%Y-%m-%d %H:%M} UTC" if self.last_success else "ever"
            return f"{self.name} has not succeeded {when} (it should every {_interval_text(self.interval)})"
        return None


def read_jobs(conn: psycopg.Connection) -> list[JobState]:
    """The telemetry schema's policy jobs and how their runs went (TimescaleDB only)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_JOBS).fetchall()
    return [
        JobState(r["job_id"], r["proc_name"], r["target"] or "", r["schedule_interval"], r["last_success"],
                 r["last_failure"], r["last_error"], bool(r["last_run_ok"]))
        for r in rows
    ]


@dataclass(frozen=True)
class JobRun:
    """One foreground run of a job."""

    job: JobState
    started_at: datetime
    finished_at: datetime
    error: str | None


def run_due(url: str, now: datetime | None = None, every: bool = False) -> list[JobRun]:
    """Run, in the foreground, each job that is due (every job with `every`), one after the
    other, and record each run; the runs, failed ones included (a failure does not stop the rest)."""
    runs: list[JobRun] = []
    # autocommit: a refresh of a continuous aggregate cannot run inside a transaction block.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM telemetry.job_runs WHERE started_at < now() - INTERVAL '30 days'")
        moment = now or _now(conn)
        for job in read_jobs(conn):
            if not (every or job.due(moment)):
                continue
            started = _now(conn)
            try:
                conn.execute("CALL run_job(%s)", (job.job_id,))
                error = None
            except psycopg.Error as exc:
                error = error_reason(exc)
            finished = _now(conn)
            conn.execute(_RECORD, (job.job_id, job.proc_name, job.target, started, finished, error))
            log.log(logging.WARNING if error else logging.INFO, "job %s: %s", job.name, error or "done",
                    extra={"job_id": job.job_id, "seconds": (finished - started).total_seconds()})
            runs.append(JobRun(job, started, finished, error))
    return runs


def _now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def _interval_text(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
