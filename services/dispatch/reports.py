"""The SLA report: per service type and district (and day), how long each step of the SLA clock
took (p50/p90/p99) and the share of requests that met their targets. Rows are flat dicts, so
they serve JSON and CSV alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .domain.policy import DispatchPolicy

# name -> (from, to): every step of the clock, then the totals from the press. The press is the
# moment dispatch received it (`created_at`): device clocks are not trusted for a report.
STEPS: dict[str, tuple[str, str]] = {
    "step_acknowledged": ("created_at", "acknowledged_at"),  # the acknowledgement was sent to the button
    "step_shown": ("created_at", "ack_shown_at"),  # the button confirmed it showed it
    "step_assigned": ("coalesce(acknowledged_at, created_at)", "assigned_at"),
    "step_arrived": ("assigned_at", "arrived_at"),
    "step_completed": ("arrived_at", "completed_at"),
    "total_assigned": ("created_at", "assigned_at"),
    "total_arrived": ("created_at", "arrived_at"),
    "total_completed": ("created_at", "completed_at"),
}
PERCENTILES = (50, 90, 99)
DIMENSIONS = ("service", "district")
COUNTS = ("requests", "completed", "cancelled", "escalated", "active", "handed_back")
TARGETS = ("ack", "assign", "arrive")

# A target is judged once its outcome is known: reached, or its time passed without it (a
# request the resident withdrew before its target is not judged). `met` needs all three.
_JUDGE = """
  (acknowledged_at IS NOT NULL OR created_at + t.ack <= %(now)s) AS ack_judged,
  coalesce(acknowledged_at <= created_at + t.ack, false) AS ack_met,
  (assigned_at IS NOT NULL OR (assign_due_at <= %(now)s AND (cancelled_at IS NULL OR cancelled_at > assign_due_at)))
    AS assign_judged,
  coalesce(assigned_at <= assign_due_at, false) AS assign_met,
  (arrived_at IS NOT NULL OR (sla_due_at <= %(now)s AND (cancelled_at IS NULL OR cancelled_at > sla_due_at)))
    AS arrive_judged,
  coalesce(arrived_at <= sla_due_at, false) AS arrive_met
"""


def _tz_name(tz: tzinfo) -> str:
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if key:
        return key
    offset = tz.utcoffset(None)
    if offset is None:
        raise ValueError("a report time zone needs a fixed offset or a zoneinfo name")
    hours = offset.total_seconds() / 3600
    return f"{-hours:+g}" if hours else "UTC"  # POSIX: "+8" in PostgreSQL means UTC-8


def sla_report(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    group_by_day: bool = False,
    *,
    service: str | None = None,
    district: str | None = None,
    by: Sequence[str] = DIMENSIONS,
    tz: tzinfo = UTC,
    policy: DispatchPolicy | None = None,
    now: datetime | None = None,
    districts: frozenset[str] | None = None,
) -> list[dict]:
    """Rows per (day,) service and district of requests created in [start, end); see the module doc.
    `districts`: only requests of these districts (a dispatcher's scope; None: all)."""
    unknown = set(by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"by: unknown dimension {', '.join(sorted(unknown))}; one of {', '.join(DIMENSIONS)}")
    if end <= start:
        raise ValueError("end must be after start")
    policy = policy or DispatchPolicy.default()
    keys = [d for d in DIMENSIONS if d in by]
    groups = (["day"] if group_by_day else []) + keys
    targets = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(s.value), sql.Literal(p.acknowledge_within))
        for s, p in policy.services.items()
    )
    steps = sql.SQL(",\n").join(
        sql.SQL("extract(epoch FROM {} - {}) AS {}").format(sql.SQL(b), sql.SQL(a), sql.Identifier(name))
        for name, (a, b) in STEPS.items()
    )
    percentiles = sql.SQL(", ").join(
        sql.SQL("percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {0}) AS {0}").format(
            sql.Identifier(name)
        )
        for name in STEPS
    )
    where = [sql.SQL("created_at >= %(start)s AND created_at < %(end)s")]
    if service:
        where.append(sql.SQL("service = %(service)s"))
    if district:
        where.append(sql.SQL("coalesce(district, 'unknown') = %(district)s"))
    if districts is not None:
        where.append(sql.SQL("district = ANY(%(districts)s)"))
    group_list = sql.SQL(", ").join(map(sql.Identifier, groups))
    query = sql.SQL("""
WITH r AS (
  SELECT service, coalesce(district, 'unknown') AS district, (created_at AT TIME ZONE %(tz)s)::date AS day,
    status, escalated_at IS NOT NULL AS escalated, handed_back > 0 AS handed_back,
    {steps},
    {judge}
  FROM dispatch.requests JOIN (VALUES {targets}) AS t(service_name, ack) ON t.service_name = service
  WHERE {where}
)
SELECT {group_cols}
  count(*) AS requests,
  count(*) FILTER (WHERE status = 'completed') AS completed,
  count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
  count(*) FILTER (WHERE escalated) AS escalated,
  count(*) FILTER (WHERE status NOT IN ('completed', 'cancelled')) AS active,
  count(*) FILTER (WHERE handed_back) AS handed_back,
  count(*) FILTER (WHERE ack_judged) AS ack_judged, count(*) FILTER (WHERE ack_judged AND ack_met) AS ack_met,
  count(*) FILTER (WHERE assign_judged) AS assign_judged,
  count(*) FILTER (WHERE assign_judged AND assign_met) AS assign_met,
  count(*) FILTER (WHERE arrive_judged) AS arrive_judged,
  count(*) FILTER (WHERE arrive_judged AND arrive_met) AS arrive_met,
  count(*) FILTER (WHERE arrive_judged AND arrive_met AND assign_met AND ack_met) AS met,
  {percentiles}
FROM r {group_by} ORDER BY {order}
""").format(
        steps=steps, judge=sql.SQL(_JUDGE), targets=targets, where=sql.SQL(" AND ").join(where),
        group_cols=sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(g)) for g in groups),
        percentiles=percentiles,
        group_by=sql.SQL("GROUP BY {}").format(group_list) if groups else sql.SQL(""),
        order=group_list if groups else sql.SQL("1"),
    )
    params = {
        "start": start, "end": end, "service": service, "district": district, "tz": _tz_name(tz),
        "districts": sorted(districts or ()),
        "fractions": [p / 100 for p in PERCENTILES], "now": now or datetime.now(UTC),
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    return [_flatten(row, group_by_day, keys) for row in rows]


def _flatten(row: dict, group_by_day: bool, keys: list[str]) -> dict:
    out: dict = {
        "day": row["day"].isoformat() if group_by_day else None,
        "service": row["service"] if "service" in keys else None,
        "district": row["district"] if "district" in keys else None,
    }
    out.update({name: row[name] for name in COUNTS})
    for target in TARGETS:
        judged, met = row[f"{target}_judged"], row[f"{target}_met"]
        out[f"{target}_judged"], out[f"{target}_met"] = judged, met
        out[f"{target}_met_share"] = round(met / judged, 4) if judged else None
    out["met"] = row["met"]
    out["met_share"] = round(row["met"] / row["arrive_judged"], 4) if row["arrive_judged"] else None
    for name in STEPS:
        values = row[name] or [None] * len(PERCENTILES)
        for p, value in zip(PERCENTILES, values, strict=True):
            out[f"{name}_p{p}_s"] = round(value, 1) if value is not None else None
    return out


def columns() -> list[str]:
    """The keys of every report row, in order (the CSV header)."""
    cols = ["day", "service", "district", *COUNTS]
    for target in TARGETS:
        cols += [f"{target}_judged", f"{target}_met", f"{target}_met_share"]
    cols += ["met", "met_share"]
    cols += [f"{name}_p{p}_s" for name in STEPS for p in PERCENTILES]
    return cols


def sla_csv(rows: Iterable[dict]) -> str:
    """The report as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else csv_cell(v)) for k, v in row.items()})
    return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A text cell a spreadsheet would run as a formula (a district named `=HYPERLINK(...)`)
    starts with a quote instead, so it shows as text; numbers pass as they are. A lone carriage
    return becomes a newline, which the writer quotes (it left a CR bare, splitting the row)."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")
