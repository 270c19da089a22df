"""What became of the commands sent to devices, in one place: the broker took one (`sent`), the
device showed it (`acknowledged`, its ack comes back through the gateway and the log), or nobody
did in time (`expired`). Each step joins the request's timeline. Also what dispatch learns of
devices' connections, which decides where and whether a command can be published."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from homecare.contract.models import CommandType
from homecare.internal import DeviceAck, DeviceState

from .. import metrics
from ..domain.requests import TimelineEntry
from .context import Dispatch
from .ports import Tx

log = logging.getLogger(__name__)

AckOutcome = Literal["recorded", "repeated", "unknown"]


def sent(conn: Tx, ctx: Dispatch, ids: list[int], at: datetime) -> list[dict[str, Any]]:
    """The broker acknowledged these commands (PUBACK): they wait in the device's session."""
    rows = ctx.repos.outbox.mark_sent(conn, ids)
    entries = []
    for row in rows:
        if row["delivery"] != "sent":  # expired by the timer loop while its publish was in flight
            continue
        metrics.DELIVERY.labels("sent").inc()
        if row["request_id"] is not None:
            entries.append((row["request_id"], _command_entry(row, "sent", "dispatch", at)))
    ctx.repos.timeline.append_many(conn, entries)  # the publisher's next round waits for this one
    return rows


def acknowledged(conn: Tx, ctx: Dispatch, ack: DeviceAck) -> AckOutcome:
    """A device confirms it showed a command. `unknown` when that device was sent no such command:
    the caller tells the device why, after the commit."""
    row, changed = ctx.repos.outbox.acknowledge(conn, ack.device_id, ack.command_id, ack.ts)
    if row is None:
        return "unknown"
    if not changed:
        return "repeated"
    metrics.DELIVERY.labels("acknowledged").inc()
    _on_timeline(conn, ctx, row, "acknowledged", f"device:{ack.device_id}", ack.ts)
    if row["request_id"] is not None and row["kind"] == CommandType.ACKNOWLEDGED.value:
        ctx.repos.requests.set_ack_shown(conn, row["request_id"], ack.ts)
    if row["kind"] == CommandType.CONFIG.value:
        ctx.configured(conn, ack.device_id, row["payload"])
    return "recorded"


def expire(conn: Tx, ctx: Dispatch, outbox_id: int, now: datetime) -> bool:
    """A command past its deadline that the device never acknowledged."""
    row = ctx.repos.outbox.expire(conn, outbox_id, now)
    if row is None:
        return False
    metrics.DELIVERY.labels("expired").inc()
    where = "its device never connected" if row["sent_at"] is None else "the device did not acknowledge it"
    log.warning("command %s (%s) for %s expired: %s", row["command_id"], row["kind"], row["device_id"], where,
                extra={"request_id": row["request_id"], "command_id": row["command_id"]})
    _on_timeline(conn, ctx, row, "expired", "system", now, reason=where)
    return True


def device_state(conn: Tx, ctx: Dispatch, state: DeviceState) -> str:
    """A device's liveness transition: where it connects, and whether its held commands may go."""
    return "first_seen" if device_states(conn, ctx, [state]) else "recorded"


def device_states(conn: Tx, ctx: Dispatch, states: list[DeviceState]) -> int:
    """`device_state` for a batch in one statement (a connect storm brings thousands); how many
    devices were seen for the first time."""
    first = ctx.repos.devices.record_states(conn, [(s.device_id, s.shard, s.state, s.at) for s in states])
    if first:  # their commands were held for want of a session: the publisher takes them now
        ctx.repos.outbox.wake(conn)
    return len(first)


def _on_timeline(
    conn: Tx, ctx: Dispatch, row: dict[str, Any], step: str, actor: str, at: datetime, **more: Any
) -> None:
    if row["request_id"] is not None:
        ctx.repos.timeline.append(conn, row["request_id"], _command_entry(row, step, actor, at, **more))


def _command_entry(row: dict[str, Any], step: str, actor: str, at: datetime, **more: Any) -> TimelineEntry:
    return TimelineEntry(at, actor, f"command.{step}", {
        "command": row["kind"], "command_id": row["command_id"], "device_id": row["device_id"], **more,
    })
