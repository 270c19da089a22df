"""Dispatch's notices to people (homecare/notify): the outbox table `dispatch.notifications`."""

from __future__ import annotations

import psycopg

from homecare.notify.model import Notice
from homecare.notify.outbox import NoticeOutbox

OUTBOX = NoticeOutbox("dispatch")


def put(conn: psycopg.Connection, notice: Notice) -> None:
    """Queue a notice in the caller's transaction; the sender routes and delivers it."""
    OUTBOX.put(conn, notice)
