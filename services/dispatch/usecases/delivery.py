"""What became of the commands sent to buttons: the gateway reports sent, acknowledged (the
button showed it) or expired, and each step forward joins the request's timeline."""

from __future__ import annotations

import logging

import psycopg

from homecare.contract.models import CommandType
from homecare.internal import CommandState

from .. import metrics
from ..domain.requests import TimelineEntry
from ..store import outbox, requests, timeline
from .context import Dispatch

log = logging.getLogger(__name__)


def command_state(conn: psycopg.Connection, ctx: Dispatch, state: CommandState) -> str:
    """Record a delivery state: `recorded`, `stale` (not a step forward, or a redelivery) or `unknown`
    (a command dispatch did not send, e.g. telemetry's)."""
    row = outbox.record_delivery(conn, state.command_id, state.state, state.at)
    if row is None:
        return "unknown" if not _known(conn, state.command_id) else "stale"
    metrics.DELIVERY.labels(state.state).inc()
    if row["request_id"] is None:
        return "recorded"
    actor = f"device:{state.device_id}" if state.state == "acknowledged" else "gateway"
    timeline.append(conn, row["request_id"], TimelineEntry(state.at, actor, f"command.{state.state}", {
        "command": row["kind"], "command_id": state.command_id, "device_id": state.device_id,
    }))
    if state.state == "acknowledged" and row["kind"] == CommandType.ACKNOWLEDGED.value:
        requests.set_ack_shown(conn, row["request_id"], state.at)
    if state.state == "expired":
        log.warning("command %s (%s) for %s expired undelivered", state.command_id, row["kind"], state.device_id,
                    extra={"request_id": row["request_id"]})
    return "recorded"


def _known(conn: psycopg.Connection, command_id: str) -> bool:
    return conn.execute("SELECT 1 FROM dispatch.outbox WHERE command_id = %s", (command_id,)).fetchone() is not None
