"""The chart benchmark's measurements: the product's own reads, timed one by one on a loaded
database, with the database's bare round trip measured beside them in the same run.

- `chart_24h`, `chart_7d`: `services.telemetry.queries.vitals` as the resident page draws its
  two charts (`console.resident_data.RANGES`: minutes over 24 h, hours over 7 days), each on a
  bed not read before in the run, as a dispatcher opening residents one after another.
- `district_dashboard`: the district beds page's data work (`console.beds_data.district_beds`
  and `districts`, as `console.beds_pages` calls them): its 100 beds' directory rows, latest
  states, each bed's last hour of minutes and sparkline, and the district menu, for districts
  in turn, as dispatchers' pages refreshing. Rendering the template is not in it.
- `round_trip`: `SELECT 1` on the same connection: the floor under every figure.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from console.beds_data import district_beds
from console.beds_data import districts as district_menu
from console.resident_data import RANGES
from homecare.db.migrate import Flavour
from services.telemetry import queries

from .load import Shape, bed_id, district_of

TARGETS_MS = {"chart_24h": 20.0, "chart_7d": 20.0, "district_dashboard": 100.0}


def percentiles(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.5), "p95": at(0.95), "p99": at(0.99),
            "max": round(ordered[-1], 2), "mean": round(statistics.fmean(ordered), 2)}


def _timed(calls: list[Callable[[], Any]]) -> list[float]:
    out = []
    for call in calls:
        began = time.perf_counter()
        call()
        out.append((time.perf_counter() - began) * 1000)
    return out


def measure(url: str, shape: Shape, charts: int, dashboards: int, seed: int = 7) -> dict[str, Any]:
    """Each read's latency percentiles (ms) against its target, and the round trip."""
    rng = random.Random(seed)
    beds = rng.sample(range(1, shape.beds + 1), min(shape.beds, 2 * charts))
    districts = sorted({district_of(n) for n in range(1, shape.beds + 1)})
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("SET jit = off")  # as the services' pools (homecare.db.pool)
        conn.commit()
        end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)

        def chart(bed: int, span: timedelta, resolution: str) -> Callable[[], Any]:
            def read() -> None:
                points = queries.vitals(conn, bed_id(bed), end - span, end, resolution)
                conn.commit()
                if not points:
                    raise RuntimeError(f"no points for {bed_id(bed)}: the data did not load")
            return read

        def dashboard(district: str) -> Callable[[], Any]:
            beds = sum(1 for n in range(1, shape.beds + 1) if district_of(n) == district)

            def read() -> None:
                view = district_beds(conn, district)
                district_menu(conn)
                conn.commit()
                if len(view["rows"]) != beds:
                    raise RuntimeError(f"{district}: {len(view['rows'])} beds on the page, not {beds}")
            return read

        def round_trip() -> None:
            conn.execute("SELECT 1").fetchone()
            conn.commit()

        (_, day, day_res, _), (_, week, week_res, _) = RANGES
        results = {
            "round_trip": percentiles(_timed([round_trip] * 200)),
            "chart_24h": percentiles(_timed([chart(b, day, day_res) for b in beds[:charts]])),
            "chart_7d": percentiles(_timed([chart(b, week, week_res) for b in beds[charts:]])),
            "district_dashboard": percentiles(_timed(
                [dashboard(districts[i % len(districts)]) for i in range(dashboards)])),
        }
    for name, target in TARGETS_MS.items():
        results[name]["target_p95_ms"] = target
        results[name]["met"] = results[name]["p95"] < target
    return results


def storage(url: str, flavour: Flavour) -> dict[str, Any]:
    """Sizes of what was read and how much of the raw history is compressed."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if flavour is Flavour.TIMESCALE:
            sizes = conn.execute(
                "SELECT hypertable_size('telemetry.bed_samples') AS raw_bytes,"
                " (SELECT hypertable_size(format('%I.%I', materialization_hypertable_schema,"
                "   materialization_hypertable_name)::regclass) FROM timescaledb_information.continuous_aggregates"
                "   WHERE view_name = 'vitals_1m') AS vitals_1m_bytes,"
                " (SELECT hypertable_size(format('%I.%I', materialization_hypertable_schema,"
                "   materialization_hypertable_name)::regclass) FROM timescaledb_information.continuous_aggregates"
                "   WHERE view_name = 'vitals_1h') AS vitals_1h_bytes"
            ).fetchone()
            chunks = conn.execute(
                "SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed"
                " FROM timescaledb_information.chunks WHERE hypertable_name = 'bed_samples'"
            ).fetchone()
            stats = conn.execute(
                "SELECT before_compression_total_bytes AS before, after_compression_total_bytes AS after"
                " FROM hypertable_compression_stats('telemetry.bed_samples')"
            ).fetchone()
            return {**sizes, **chunks, "compressed_before_bytes": stats["before"],
                    "compressed_after_bytes": stats["after"]}
        return conn.execute(
            "SELECT (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
            "   WHERE inhparent = 'telemetry.bed_samples'::regclass) AS raw_bytes,"
            " pg_total_relation_size('telemetry.vitals_1m') AS vitals_1m_bytes,"
            " pg_total_relation_size('telemetry.vitals_1h') AS vitals_1h_bytes"
        ).fetchone()


def server(url: str) -> dict[str, Any]:
    """The server's version and the settings that shape these reads."""
    with psycopg.connect(url, autocommit=True) as conn:
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("server_version", "shared_buffers", "work_mem", "effective_cache_size",
                                 "fsync", "synchronous_commit")}
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        settings["timescaledb"] = ext[0] if ext else None
    return settings
