"""Consumer incidents (`ops.consumer_incidents`): a consumer of the internal log got stuck, and
when it recovered. Data functions take a connection and do not commit. Raising and clearing are
idempotent, so every console replica may record what it sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from homecare.log.health import ConsumerState

_COLUMNS = "id, consumer, title, stuck_after_s, raised_at, noticed_at, peak_age_s, peak_lag, cleared_at"


def open_incidents(conn: psycopg.Connection, namespace: str) -> dict[str, dict[str, Any]]:
    """The incidents not yet cleared, by consumer."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM ops.consumer_incidents WHERE namespace = %s AND cleared_at IS NULL",
        (namespace,),
    ).fetchall()
    return {row["consumer"]: row for row in rows}


def raise_incident(conn: psycopg.Connection, namespace: str, state: ConsumerState) -> bool:
    """Open an incident for a stuck consumer; False when one is open already (another replica's)."""
    row = conn.execute(
        "INSERT INTO ops.consumer_incidents"
        " (namespace, consumer, title, stuck_after_s, raised_at, peak_age_s, peak_lag)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (namespace, consumer) WHERE cleared_at IS NULL DO NOTHING RETURNING id",
        (namespace, state.consumer, state.title, state.stuck_after_s, state.stuck_since or state.checked_at,
         state.oldest_unacked_s, state.lag),
    ).fetchone()
    return row is not None


def worsen(conn: psycopg.Connection, namespace: str, state: ConsumerState) -> None:
    """Keep the worst age and lag of an open incident."""
    conn.execute(
        "UPDATE ops.consumer_incidents SET peak_age_s = greatest(peak_age_s, %s), peak_lag = greatest(peak_lag, %s)"
        " WHERE namespace = %s AND consumer = %s AND cleared_at IS NULL",
        (state.oldest_unacked_s, state.lag, namespace, state.consumer),
    )


def clear_incident(conn: psycopg.Connection, namespace: str, consumer: str, at: datetime) -> bool:
    """Close a consumer's open incident; False when none was open (another replica cleared it)."""
    row = conn.execute(
        "UPDATE ops.consumer_incidents SET cleared_at = greatest(%s, raised_at)"
        " WHERE namespace = %s AND consumer = %s AND cleared_at IS NULL RETURNING id",
        (at, namespace, consumer),
    ).fetchone()
    return row is not None


def recent(conn: psycopg.Connection, namespace: str, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """Incidents newest first; `before` an incident's id to page on to older ones."""
    return conn.execute(
        f"SELECT {_COLUMNS} FROM ops.consumer_incidents"
        " WHERE namespace = %(namespace)s AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"namespace": namespace, "before": before, "limit": limit},
    ).fetchall()
