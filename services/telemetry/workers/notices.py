"""The sender of telemetry's notices: homecare/notify's one loop on `telemetry.notifications`,
each delivery's result written into the alert's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from homecare.notify.channels import Channel
from homecare.notify.sender import NoticeSender
from homecare.notify.settings import NotifySettings
from services.telemetry.domain.lifecycle import SYSTEM
from services.telemetry.store import alerts, notices


def record(conn: psycopg.Connection, alert_id: str, kind: str, detail: dict[str, Any], at: datetime) -> None:
    """A delivery's result on the alert's timeline; live consoles are told."""
    alerts.add_event(conn, alert_id, SYSTEM, kind, detail, at=at)
    alerts.notify(conn, alert_id)


def sender(pool: ConnectionPool, config: NotifySettings, channels: dict[str, Channel] | None = None) -> NoticeSender:
    return NoticeSender(pool, notices.OUTBOX, config, record, channels)
