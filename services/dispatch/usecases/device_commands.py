"""Commands to a device that belong to no request: the platform asks a device to test itself
(mqtt-v1.1 `selftest.request`). They go through the same outbox, publisher and delivery record as
a request's commands (`notify`), so they wait for a device that is offline, up to their deadline."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import TypeAdapter

from homecare.contract.models import Command, CommandType

from ..store import new_id
from .context import Dispatch
from .notify import DEADLINE_S
from .ports import Tx

log = logging.getLogger(__name__)
_COMMAND = TypeAdapter(Command)


def ask_selftest(conn: Tx, ctx: Dispatch, device_id: str, by: str, at: datetime) -> str:
    """Queue `selftest.request` for a device; its command id, which the device's `device.selftest`
    answer carries. The caller has checked that the device exists and is not decommissioned."""
    command = _COMMAND.validate_python({"command_id": new_id("c", 8), "type": CommandType.SELFTEST_REQUEST.value})
    payload = command.model_dump(mode="json", exclude_none=True)
    ctx.repos.outbox.put(conn, device_id, payload, kind=CommandType.SELFTEST_REQUEST.value, deadline_s=DEADLINE_S)
    log.info("%s asked %s for a self-test at %s (%s)", by, device_id, at.isoformat(), payload["command_id"],
             extra={"command_id": payload["command_id"]})
    return str(payload["command_id"])
