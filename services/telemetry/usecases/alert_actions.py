"""What people do with an alert: acknowledge, assign, resolve. One call, one transaction
(owned by the caller); the pure lifecycle decides, the context's repository saves and notifies."""

from __future__ import annotations

from datetime import datetime

from services.telemetry.domain import lifecycle, notices
from services.telemetry.usecases.context import Alerting
from services.telemetry.usecases.ports import Tx


def acknowledge(conn: Tx, ctx: Alerting, alert_id: str, by: str, now: datetime | None = None) -> None:
    """Mark an open alert as acknowledged by `by`; Conflict otherwise."""
    now = now or ctx.clock()
    store = ctx.repos.alerts
    alert = lifecycle.acknowledge(store.load_state(conn, alert_id), by, now)
    store.save_state(conn, alert)
    store.add_event(conn, alert_id, by, "acknowledged", at=now)
    store.notify(conn, alert_id)


def assign(conn: Tx, ctx: Alerting, alert_id: str, assignee: str, by: str) -> None:
    """Give an unresolved alert to `assignee`; Conflict when it is resolved."""
    store = ctx.repos.alerts
    alert = lifecycle.assign(store.load_state(conn, alert_id), assignee)
    store.save_state(conn, alert)
    store.add_event(conn, alert_id, by, "assigned", {"assignee": alert.assignee})
    store.notify(conn, alert_id)


def resolve(conn: Tx, ctx: Alerting, alert_id: str, by: str, note: str | None, now: datetime | None = None) -> None:
    """Close an alert with a note; Conflict when it is already resolved."""
    now = now or ctx.clock()
    store = ctx.repos.alerts
    alert = lifecycle.resolve(store.load_state(conn, alert_id), by, now, note)
    store.save_state(conn, alert)
    store.add_event(conn, alert_id, by, "resolved", {"note": note} if note else {}, at=now)
    store.notify(conn, alert_id)


def reannounce_due(conn: Tx, ctx: Alerting, now: datetime | None = None, limit: int = 50) -> list[str]:
    """Announce again every open alert of the re-announced severities that nobody has
    acknowledged for the interval: on its timeline (the console beeps again) and as a notice.
    Acknowledging, assigning or resolving it stops this (an assigned alert has someone)."""
    now = now or ctx.clock()
    store = ctx.repos.alerts
    done = []
    due = store.reannounce_due(conn, now, ctx.reannounce.every, list(ctx.reannounce.severities), limit)
    for alert in due:
        count = store.mark_reannounced(conn, alert["id"], now)
        store.add_event(conn, alert["id"], lifecycle.SYSTEM, "reannounced", {
            "count": count, "every_s": int(ctx.reannounce.every.total_seconds()),
        }, at=now)
        store.notify(conn, alert["id"])
        store.put_notice(conn, notices.reannounced(alert, alert.get("reannounced", 0)))
        done.append(alert["id"])
    return done
