"""TimescaleDB policies with the configured values: continuous-aggregate refresh, compression
and retention. Applied at start (idempotent: each policy is removed and added again). The
aggregates' refresh never reaches past their source's retention."""

from __future__ import annotations

import logging

import psycopg
from psycopg.rows import tuple_row

from services.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)

_RAW = "telemetry.bed_samples"
_ADD_COMPRESSION = "SELECT add_compression_policy(%s::regclass, make_interval(days => %s::int))"
_ADD_RETENTION = "SELECT add_retention_policy(%s::regclass, make_interval(days => %s::int))"
_ROLLUPS = {"telemetry.vitals_1m": "rollup_1m_retention_days", "telemetry.vitals_1h": "rollup_1h_retention_days"}
# Samples may arrive up to 7 days late: each aggregate is refreshed that far back (8 days)...
REFRESH_REACH_DAYS = 8
# ...but never over days its source no longer holds: a refresh of a range whose raw rows retention
# dropped deletes the aggregate's rows there (the minutes and hours of those days would go).
# view: (the setting of its source's retention, end_offset, schedule_interval)
_REFRESH = {
    "telemetry.vitals_1m": ("raw_retention_days", "1 minute", "1 minute"),
    "telemetry.vitals_1h": ("rollup_1m_retention_days", "1 hour", "5 minutes"),
}
_ADD_REFRESH = (
    "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => make_interval(days => %s::int),"
    " end_offset => %s::interval, schedule_interval => %s::interval)"
)


def refresh_reach_days(source_retention_days: int) -> int:
    """How many days back an aggregate is refreshed, given its source's retention (0: forever)."""
    if not source_retention_days:
        return REFRESH_REACH_DAYS
    return min(REFRESH_REACH_DAYS, source_retention_days)


def policy_statements(config: TelemetrySettings, refresh_reach: dict[str, int | None] | None = None
                      ) -> list[tuple[str, tuple]]:
    """The SQL that sets every policy to the configured values, in order. `refresh_reach`: how
    many days back each aggregate's refresh policy reaches now (None: no policy); a policy that
    already reaches as far as it should is left as it is (adding it again would make a new job,
    due at once, on every start of every replica)."""
    out: list[tuple[str, tuple]] = [
        ("SELECT remove_compression_policy(%s::regclass, if_exists => TRUE)", (_RAW,)),
        ("SELECT remove_retention_policy(%s::regclass, if_exists => TRUE)", (_RAW,)),
    ]
    if config.compress_after_days:
        out.append((_ADD_COMPRESSION, (_RAW, config.compress_after_days)))
    if config.raw_retention_days:
        out.append((_ADD_RETENTION, (_RAW, config.raw_retention_days)))
    for view, setting in _ROLLUPS.items():
        days = getattr(config, setting)
        out.append(("SELECT remove_retention_policy(%s::regclass, if_exists => TRUE)", (view,)))
        if days:
            out.append((_ADD_RETENTION, (view, days)))
    for view, (source_retention, end_offset, every) in _REFRESH.items():
        reach = refresh_reach_days(getattr(config, source_retention))
        if (refresh_reach or {}).get(view) == reach:
            continue
        out.append(("SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => TRUE)", (view,)))
        out.append((_ADD_REFRESH, (view, reach, end_offset, every)))
    return out


# Each aggregate's refresh policy and how many whole days back it reaches (other offsets: None,
# set again).
_REFRESH_REACH = """
SELECT format('%I.%I', hypertable_schema, hypertable_name) AS view,
       CASE WHEN (config->>'start_offset')::interval = make_interval(days => extract(day FROM
                 (config->>'start_offset')::interval)::int)
            THEN extract(day FROM (config->>'start_offset')::interval)::int END AS days
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_schema = 'telemetry'
"""


def apply_policies(conn: psycopg.Connection, config: TelemetrySettings) -> None:
    """Set compression, retention and refresh policies to the configured values (TimescaleDB only)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        current = dict(cur.execute(_REFRESH_REACH).fetchall())
    for sql, params in policy_statements(config, current):
        conn.execute(sql, params)
    log.info(
        "timescale policies applied",
        extra={"compress_after_days": config.compress_after_days, "raw_retention_days": config.raw_retention_days},
    )
