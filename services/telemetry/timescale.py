"""TimescaleDB policies with the configured values: continuous-aggregate refresh, compression
and retention. Applied at start (idempotent: each policy is removed and added again)."""

from __future__ import annotations

import logging

import psycopg

from .settings import TelemetrySettings

log = logging.getLogger(__name__)

_RAW = "telemetry.bed_samples"
_ADD_COMPRESSION = "SELECT add_compression_policy(%s::regclass, make_interval(days => %s::int))"
_ADD_RETENTION = "SELECT add_retention_policy(%s::regclass, make_interval(days => %s::int))"
_ROLLUPS = {"telemetry.vitals_1m": "rollup_1m_retention_days", "telemetry.vitals_1h": "rollup_1h_retention_days"}


def policy_statements(config: TelemetrySettings) -> list[tuple[str, tuple]]:
    """The SQL that sets every policy to the configured values, in order."""
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
    return out


def apply_policies(conn: psycopg.Connection, config: TelemetrySettings) -> None:
    """Set compression and retention policies to the configured values (TimescaleDB only)."""
    for sql, params in policy_statements(config):
        conn.execute(sql, params)
    log.info(
        "timescale policies applied",
        extra={"compress_after_days": config.compress_after_days, "raw_retention_days": config.raw_retention_days},
    )
