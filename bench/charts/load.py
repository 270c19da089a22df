"""The chart benchmark's data: a city's beds with weeks of samples, loaded once into a database
of their own and kept (`bench_charts.loaded` says what was loaded), topped up to the present
before each run.

Samples are generated inside PostgreSQL (generate_series) rather than sent through the ingest
path: the ingest path has its own benchmark, and 2.6 billion rows through it would take days.
What the charts read is then built by the product's own means: on TimescaleDB the continuous
aggregates (refreshed day by day as the policy would have done back then) and the compression
policy; on plain PostgreSQL the daily partitions and the service's rollup recompute.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.db.migrate import Flavour, migrate
from services.telemetry.store import rollups
from services.telemetry.store import samples as store
from services.telemetry.store.jobs import run_due

log = logging.getLogger("bench.charts")

DAY = timedelta(days=1)
BEDS_PER_DISTRICT = 100
MINUTE = timedelta(minutes=1)
COMPRESS_AFTER = timedelta(days=7)  # the product's default compression policy


@dataclass(frozen=True)
class Shape:
    """What is loaded: beds, days of history, one sample per `interval_s` per bed."""

    beds: int = 1000
    days: int = 30
    interval_s: int = 1

    @property
    def database(self) -> str:
        return f"bench_charts_{self.beds}b_{self.days}d_{self.interval_s}s"

    @property
    def rows(self) -> int:
        return self.beds * self.days * 86400 // self.interval_s


def bed_id(n: int) -> str:
    return f"bed-{n:05d}"


def district_of(n: int) -> str:
    return f"district-{(n - 1) // BEDS_PER_DISTRICT + 1:02d}"


# One bed's day, made up but shaped like one: asleep from about 21:30 to 06:30 local time
# (Shanghai, UTC+8; each bed shifted by up to an hour), a few minutes out of bed around 03:00,
# heart and breathing rate only while in bed, drifting slowly. The expression works on whole
# seconds so that it stays cheap: 2.6 billion rows at full size.
_SAMPLES = """
INSERT INTO telemetry.bed_samples
    (ts, device_id, resident_id, occupied, heart_rate, respiration_rate, movement)
SELECT t.ts, 'bed-' || lpad(b::text, 5, '0'), 'res-' || lpad(b::text, 5, '0'), o.occ,
       CASE WHEN o.occ THEN 54 + b %% 13 + (t.e / 600 + b) %% 9 END,
       CASE WHEN o.occ THEN 12 + b %% 5 + (t.e / 900 + b) %% 4 END,
       CASE WHEN o.occ THEN ((t.e + b) %% 7) / 20.0 ELSE 0 END
FROM generate_series(%(first_bed)s::int, %(last_bed)s::int) b
CROSS JOIN generate_series(0, %(count)s::int - 1) s
CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + s * %(step)s::interval AS ts,
                           %(start_epoch)s::bigint + s * %(interval_s)s::bigint AS e) t
CROSS JOIN LATERAL (SELECT (t.e + 28800 + (b %% 60) * 60) %% 86400 AS sod) d
CROSS JOIN LATERAL (SELECT (d.sod < 23400 OR d.sod >= 77400)
                           AND NOT (d.sod >= 10800 + (b %% 90) * 60 AND d.sod < 11100 + (b %% 90) * 60) AS occ) o
"""

_LATEST = """
INSERT INTO telemetry.latest_samples
    (device_id, ts, resident_id, occupied, heart_rate, respiration_rate, movement)
SELECT DISTINCT ON (device_id) device_id, ts, resident_id, occupied, heart_rate, respiration_rate, movement
FROM telemetry.bed_samples WHERE ts >= %(since)s
ORDER BY device_id, ts DESC
ON CONFLICT (device_id) DO UPDATE SET ts = EXCLUDED.ts, occupied = EXCLUDED.occupied,
    heart_rate = EXCLUDED.heart_rate, respiration_rate = EXCLUDED.respiration_rate,
    movement = EXCLUDED.movement, updated_at = now()
"""


def database_url(server_url: str, name: str) -> str:
    """The same server, another database (URLs with a socket folder in their query too)."""
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def prepare(server_url: str, shape: Shape, workers: int = 2, database: str | None = None
            ) -> tuple[str, Flavour, dict[str, Any]]:
    """The shape's database on this server (named after the shape unless `database` is given),
    loaded and topped up to now: its URL, its flavour and what loading took (seconds per phase;
    absent for a phase done in an earlier run)."""
    name = database or shape.database
    url = database_url(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    flavour = migrate(url)
    timings: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_charts")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_charts.loaded (until timestamptz NOT NULL, history_s float8)")
        row = conn.execute("SELECT until FROM bench_charts.loaded").fetchone()
        now = _minute(datetime.now(UTC))
        if row is None:
            _directory(conn, shape)
            began = time.monotonic()
            until = _history(url, conn, flavour, shape, now - shape.days * DAY, now, workers)
            timings["history_s"] = round(time.monotonic() - began, 1)
            conn.execute("INSERT INTO bench_charts.loaded VALUES (%s, %s)", (until, timings["history_s"]))
        else:
            until = row[0]
        began = time.monotonic()
        until = _top_up(url, conn, flavour, shape, until, _minute(datetime.now(UTC)), workers)
        conn.execute("UPDATE bench_charts.loaded SET until = %s", (until,))
        timings["top_up_s"] = round(time.monotonic() - began, 1)
    return url, flavour, timings


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _directory(conn: psycopg.Connection, shape: Shape) -> None:
    """Residents in districts of 100 and their beds, as the console's pages find them."""
    conn.execute(
        "INSERT INTO registry.residents (id, name, address, district, lat, lon)"
        " SELECT 'res-' || lpad(n::text, 5, '0'), 'Resident ' || n, n || ' Bench Road',"
        "  'district-' || lpad(((n - 1) / %(per)s + 1)::text, 2, '0'),"
        "  31.2 + (n %% 100) / 1000.0, 121.4 + (n / 100) / 1000.0"
        " FROM generate_series(1, %(beds)s) n ON CONFLICT DO NOTHING",
        {"beds": shape.beds, "per": BEDS_PER_DISTRICT},
    )
    conn.execute(
        "INSERT INTO gateway.devices (id, kind, resident_id, secret_hash)"
        " SELECT 'bed-' || lpad(n::text, 5, '0'), 'bed', 'res-' || lpad(n::text, 5, '0'), 'bench'"
        " FROM generate_series(1, %(beds)s) n ON CONFLICT DO NOTHING",
        {"beds": shape.beds},
    )


def _history(url: str, conn: psycopg.Connection, flavour: Flavour, shape: Shape, start: datetime,
             end: datetime, workers: int) -> datetime:
    """Every day from start to end, oldest first, each followed by what the product would have
    done with it by now (its rollups or minute aggregate)."""
    if flavour is Flavour.PLAIN:
        store.ensure_partitions(conn, start.date(), shape.days + 2)
    day = start
    while day < end:
        upto = min(day + DAY, end)
        began = time.monotonic()
        _samples(url, shape, day, upto, workers)
        _after_samples(url, conn, flavour, shape, day, upto, workers)
        if flavour is Flavour.TIMESCALE and upto < end - COMPRESS_AFTER:
            # The policies as they would have run meanwhile: the compression policy takes each
            # day older than 7 as it comes, so the history never holds a month uncompressed
            # (at 10 s a sample that filled this machine's disk).
            _run_jobs(url)
        log.info("loaded %s .. %s in %.0f s", day, upto, time.monotonic() - began)
        day = upto
    if flavour is Flavour.TIMESCALE:
        # The hour aggregate over the whole history once, then every policy (compression of
        # days older than 7, the refreshes up to now) as `homecare telemetry run-jobs --all`.
        _refresh(conn, "telemetry.vitals_1h", start, end)
        _run_jobs(url)
    return end


def _refresh(conn: psycopg.Connection, view: str, start: datetime, end: datetime) -> None:
    """Refresh a continuous aggregate; while the server's own policy job refreshes it (its
    background workers may run them, and fail, at any time), wait and try again."""
    for attempt in range(30):
        try:
            conn.execute(f"CALL refresh_continuous_aggregate('{view}', %s, %s)", (start, end))
            return
        except psycopg.errors.LockNotAvailable:
            log.info("%s: a concurrent refresh, again in 5 s (%d)", view, attempt + 1)
            time.sleep(5)
    raise RuntimeError(f"{view}: still refreshed concurrently after 30 tries")


def _run_jobs(url: str) -> None:
    """Every policy now, as `homecare telemetry run-jobs --all`; a job the server's own worker
    was running at the same moment is run again, any other failure stops the run."""
    for _ in range(10):
        failed = [f"{run.job.name}: {run.error}" for run in run_due(url, every=True) if run.error]
        if not failed:
            return
        if not all("concurrent" in f for f in failed):
            break
        time.sleep(5)
    raise RuntimeError("TimescaleDB jobs failed: " + "; ".join(failed))


def _top_up(url: str, conn: psycopg.Connection, flavour: Flavour, shape: Shape, since: datetime,
            now: datetime, workers: int) -> datetime:
    """Samples from where the load stopped to now, then the product's upkeep, so that the
    charts end at the present as they would on a running network."""
    if now > since:
        if flavour is Flavour.PLAIN:
            store.ensure_partitions(conn, since.date(), (now.date() - since.date()).days + 2)
        _samples(url, shape, since, now, workers)
        _after_samples(url, conn, flavour, shape, since, now, workers)
    if flavour is Flavour.TIMESCALE:
        _run_jobs(url)
    conn.execute(_LATEST, {"since": now - timedelta(hours=1)})
    conn.execute("ANALYZE")
    return max(now, since)


def _samples(url: str, shape: Shape, start: datetime, end: datetime, workers: int) -> None:
    """[start, end) for every bed, the beds split between `workers` connections."""
    count = int((end - start).total_seconds()) // shape.interval_s
    if count <= 0:
        return
    per = -(-shape.beds // workers)
    ranges = [(first, min(first + per - 1, shape.beds)) for first in range(1, shape.beds + 1, per)]

    def load(beds: tuple[int, int]) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(_SAMPLES, {
                "first_bed": beds[0], "last_bed": beds[1], "count": count, "start": start,
                "step": timedelta(seconds=shape.interval_s), "interval_s": shape.interval_s,
                "start_epoch": int(start.timestamp()),
            })

    with ThreadPoolExecutor(len(ranges)) as pool:
        list(pool.map(load, ranges))


def _after_samples(url: str, conn: psycopg.Connection, flavour: Flavour, shape: Shape, start: datetime,
                   end: datetime, workers: int) -> None:
    if flavour is Flavour.TIMESCALE:
        # Outside the refresh policy's 8 days this is what the policy did when the day was new.
        _refresh(conn, "telemetry.vitals_1m", start, _minute(end))
        return
    # Plain: the service's own recompute of the touched minutes, a district at a time.
    minutes = []
    minute = _minute(start)
    while minute < end:
        minutes.append(minute)
        minute += MINUTE
    if not minutes:
        return

    def recompute(first: int) -> None:
        touched = [rollups.Touched(bed_id(n), minutes[0], minutes[-1], tuple(minutes))
                   for n in range(first, min(first + BEDS_PER_DISTRICT, shape.beds + 1))]
        with psycopg.connect(url) as c:
            rollups.recompute(c, touched)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(recompute, range(1, shape.beds + 1, BEDS_PER_DISTRICT)))
