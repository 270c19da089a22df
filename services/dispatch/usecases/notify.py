"""Commands to the resident's button, written to the outbox in the caller's transaction."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from homecare.contract.models import Command, CommandType

from ..domain.requests import ServiceRequest, TimelineEntry
from ..store import new_id
from .context import Dispatch
from .ports import Tx

log = logging.getLogger(__name__)
_COMMAND = TypeAdapter(Command)
# How long a command may wait for its device (offline, or never connected) before it expires and
# the request's timeline says it was never shown. A resident's light that comes on ten minutes late
# says something that may be false by then.
DEADLINE_S = 600


def notify(
    conn: Tx,
    ctx: Dispatch,
    request: ServiceRequest,
    command_type: CommandType,
    at: datetime,
    *,
    device_id: str | None = None,
    origin_at: datetime | None = None,
    **fields: Any,
) -> str | None:
    """Queue a command for the request's button (or the resident's); returns its command id."""
    target = device_id or request.device_id or ctx.find_button(conn, request.resident_id)
    if not target:
        log.info("request %s: no button to show %s on", request.id, command_type.value)
        ctx.repos.timeline.append(conn, request.id, TimelineEntry(at, "system", "not_notified", {
            "command": command_type.value, "reason": "the resident has no button",
        }))
        return None
    command = {
        "command_id": new_id("c", 8), "type": command_type.value, "request_id": request.id,
        "service": request.service.value, **fields,
    }
    # Never queue what the device contract would reject; the device gets it as the contract writes it.
    command = _COMMAND.validate_python(command).model_dump(mode="json", exclude_none=True)
    ctx.repos.outbox.put(
        conn, target, command, kind=command_type.value, deadline_s=DEADLINE_S, request_id=request.id,
        origin_at=origin_at,
    )
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(at, "system", "notified", {
        "command": command_type.value, "command_id": command["command_id"], "device_id": target,
    }))
    return str(command["command_id"])
