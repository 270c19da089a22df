"""What the alert rules learn from other services, through their Python interfaces."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import psycopg

from services.telemetry.usecases.ports import Unconnected

log = logging.getLogger(__name__)

ON_SITE = "arrived"


def provider_on_site(conn: psycopg.Connection, resident_id: str) -> bool:
    """Whether a provider is at the resident's home now (a request of theirs is `arrived`).

    Asked of dispatch (`services.dispatch.queries.open_requests_for`); when dispatch cannot
    answer, the answer is no, so an alert is raised rather than lost.
    """
    from services.dispatch.interface import open_requests_for  # dispatch owns requests

    try:
        with conn.transaction():  # a savepoint: a failing lookup must not abort the caller's work
            requests = open_requests_for(conn, resident_id)
    except psycopg.Error:
        log.exception("asking dispatch about the requests of %s failed", resident_id)
        return False
    return any(r.get("status") == ON_SITE for r in requests)


def devices_never_connected(conn: psycopg.Connection, provisioned_before: datetime) -> list[Unconnected]:
    """Devices provisioned before the given time that never connected, asked of the gateway
    (`gateway.interface.never_connected`)."""
    from gateway.interface import never_connected  # the gateway owns devices

    return [Unconnected(d.id, d.resident_id, d.kind.value, d.created_at)
            for d in never_connected(conn, provisioned_before)]


def ask_for_selftest(conn: psycopg.Connection, device_id: str) -> str | None:
    """Chase a device that missed its self-test: ask it for one now (`selftest.request`, through
    dispatch, which sends every command to devices). Its command id; None when dispatch could not
    queue it, so the missed-test alert is raised all the same."""
    from services.dispatch.interface import Dispatch, ask_selftest  # dispatch sends commands

    try:
        with conn.transaction():  # a savepoint: a failing ask must not abort the caller's work
            return ask_selftest(conn, Dispatch(), device_id, "system:selftest-chase", datetime.now(UTC))
    except psycopg.Error:
        log.exception("asking %s for a self-test failed", device_id)
        return None
