"""Migration 0003 on a database from before it: the command orders the outbox held for the gateway
become commands dispatch publishes itself, and the devices the gateway saw are known to have a
broker session."""

from __future__ import annotations

import json

import psycopg
from psycopg.rows import dict_row

from homecare.db import migrate
from homecare.residents.store import Location, NewResident, enrol
from tests.support import unique


def _before_commands_moved(url: str) -> tuple[str, str]:
    """Take a migrated database back to before dispatch's 0003 (and 0004), with a seen and a
    never-seen button, and two command orders in the old outbox: one delivered, one not."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE dispatch.devices, dispatch.held_cancels")
        for index in ("outbox_command_unique", "outbox_device", "outbox_open", "outbox_to_publish"):
            conn.execute(f"DROP INDEX dispatch.{index}")
        conn.execute("ALTER TABLE dispatch.outbox DROP COLUMN device_id, DROP COLUMN deadline_at, DROP COLUMN acked_at")
        conn.execute("CREATE INDEX outbox_unsent ON dispatch.outbox (id) WHERE sent_at IS NULL")
        conn.execute("DELETE FROM public.schema_migrations WHERE component = 'dispatch' AND version >= 3")
        resident = enrol(conn, NewResident(name="Wang Fang", address="8 Hill Road", district="East",
                                           location=Location(lat=31.2, lon=121.5))).id
        seen, never = unique("btn"), unique("btn")
        for device_id, state in ((seen, "online"), (never, "never_seen")):
            conn.execute("INSERT INTO gateway.devices (id, kind, resident_id, secret_hash, state, last_seen)"
                         " VALUES (%s, 'button', %s, 'x', %s, CASE WHEN %s = 'online' THEN now() END)",
                         (device_id, resident, state, state))
        for n, (device_id, delivery) in enumerate(((seen, "acknowledged"), (never, None))):
            command = {"command_id": f"c-old-{n}-{device_id}", "type": "request.acknowledged",
                       "request_id": "r-old", "service": "meal"}
            conn.execute(
                "INSERT INTO dispatch.outbox (topic, kind, payload, command_id, sent_at, delivery)"
                " VALUES ('homecare/internal/v1/commands', 'request.acknowledged', %s, %s, now(), %s)",
                (json.dumps({"device_id": device_id, "command": command, "deadline_s": 600}), command["command_id"],
                 delivery),
            )
    return seen, never


def test_the_old_command_orders_become_commands_dispatch_publishes(scratch_database):
    migrate(scratch_database)
    seen, never = _before_commands_moved(scratch_database)
    migrate(scratch_database)
    with psycopg.connect(scratch_database, row_factory=dict_row) as conn:
        rows = {r["device_id"]: r for r in conn.execute(
            "SELECT device_id, topic, payload, sent_at, delivery, deadline_at - created_at AS deadline"
            " FROM dispatch.outbox WHERE device_id IN (%s, %s)", (seen, never)).fetchall()}
        known = [r["device_id"] for r in conn.execute(
            "SELECT device_id FROM dispatch.devices WHERE device_id IN (%s, %s)", (seen, never)).fetchall()]
    assert rows[seen]["topic"] == f"homecare/v1/devices/{seen}/commands"
    assert rows[seen]["payload"]["command_id"].startswith("c-old-0")  # the command itself, not the order
    assert rows[seen]["sent_at"] is not None and rows[seen]["delivery"] == "acknowledged"
    # delivered to the gateway but never confirmed: dispatch publishes it again, once the device connects
    assert rows[never]["sent_at"] is None and rows[never]["delivery"] is None
    assert rows[never]["deadline"].total_seconds() == 600
    assert known == [seen]
