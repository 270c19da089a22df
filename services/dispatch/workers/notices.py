"""The sender of dispatch's notices: homecare/notify's one loop on `dispatch.notifications`, each
delivery's result written into the request's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from homecare.notify.channels import Channel
from homecare.notify.sender import NoticeSender
from homecare.notify.settings import NotifySettings

from ..domain.requests import TimelineEntry
from ..store import notices, timeline


def record(conn: psycopg.Connection, request_id: str, kind: str, detail: dict[str, Any], at: datetime) -> None:
    """A delivery's result on the request's timeline (which tells live consoles)."""
    timeline.append(conn, request_id, TimelineEntry(at, "system", kind, detail))


def sender(pool: ConnectionPool, config: NotifySettings, channels: dict[str, Channel] | None = None) -> NoticeSender:
    return NoticeSender(pool, notices.OUTBOX, config, record, channels)
