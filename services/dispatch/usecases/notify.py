"""Commands to the resident's button, written to the outbox in the caller's transaction."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg
from pydantic import TypeAdapter

from homecare.contract.models import Command, CommandType
from homecare.internal import CommandOrder
from homecare.topics import Internal

from ..domain.requests import ServiceRequest, TimelineEntry
from ..store import new_id, outbox, timeline
from .context import Dispatch

log = logging.getLogger(__name__)
_COMMAND = TypeAdapter(Command)


def notify(
    conn: psycopg.Connection,
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
        timeline.append(conn, request.id, TimelineEntry(at, "system", "not_notified", {
            "command": command_type.value, "reason": "the resident has no button",
        }))
        return None
    command = {
        "command_id": new_id("c", 8), "type": command_type.value, "request_id": request.id,
        "service": request.service.value, **fields,
    }
    _COMMAND.validate_python(command)  # never queue what the device contract would reject
    order = CommandOrder(device_id=target, command=command)
    outbox.put(
        conn, Internal.COMMANDS, order.model_dump(mode="json"), kind=command_type.value,
        request_id=request.id, origin_at=origin_at, command_id=command["command_id"],
    )
    timeline.append(conn, request.id, TimelineEntry(at, "system", "notified", {
        "command": command_type.value, "command_id": command["command_id"], "device_id": target,
    }))
    return command["command_id"]
