"""Rule state in the database (timers live here): episodes, bed presence, device liveness,
button keys (a stuck button), evaluated nights. Data functions: they take a connection and do not commit."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from homecare.buttons import PressRun
from services.telemetry.domain.rules.bed_exit import Presence
from services.telemetry.domain.rules.button import ButtonKey
from services.telemetry.domain.rules.device import DeviceStatus
from services.telemetry.domain.rules.episodes import Episode
from services.telemetry.domain.rules.selftest import SelftestRecord


def episode(conn: psycopg.Connection, rule: str, subject: str) -> Episode | None:
    """The latest episode of a rule on a subject, locked for update."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT started_at, last_seen_at FROM telemetry.episodes WHERE rule = %s AND subject = %s FOR UPDATE",
            (rule, subject),
        ).fetchone()
    return Episode(**row) if row else None


def save_episode(conn: psycopg.Connection, rule: str, subject: str, value: Episode) -> None:
    conn.execute(
        "INSERT INTO telemetry.episodes (rule, subject, started_at, last_seen_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (rule, subject) DO UPDATE SET started_at = EXCLUDED.started_at,"
        " last_seen_at = EXCLUDED.last_seen_at",
        (rule, subject, value.started_at, value.last_seen_at),
    )


def presence(conn: psycopg.Connection, device_id: str, resident_id: str) -> Presence:
    """A bed's presence state, locked for update (an empty one when it has none yet)."""
    conn.execute(
        "INSERT INTO telemetry.bed_presence (device_id, resident_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (device_id, resident_id),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT device_id, resident_id, exited_at, entered_at, attended_exit, visit_ended_at"
            " FROM telemetry.bed_presence WHERE device_id = %s FOR UPDATE",
            (device_id,),
        ).fetchone()
    return Presence(**row)


def save_presence(conn: psycopg.Connection, value: Presence, due_at: datetime | None) -> None:
    conn.execute(
        "UPDATE telemetry.bed_presence SET resident_id = %s, exited_at = %s, entered_at = %s, attended_exit = %s,"
        " visit_ended_at = %s, due_at = %s, updated_at = now() WHERE device_id = %s",
        (value.resident_id, value.exited_at, value.entered_at, value.attended_exit, value.visit_ended_at, due_at,
         value.device_id),
    )


def due_presences(conn: psycopg.Connection, now: datetime, limit: int = 500) -> list[Presence]:
    """Beds whose timer is due, locked (skipping those another replica holds)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT device_id, resident_id, exited_at, entered_at, attended_exit, visit_ended_at"
            " FROM telemetry.bed_presence WHERE due_at <= %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
    return [Presence(**r) for r in rows]


def device_status(conn: psycopg.Connection, device_id: str) -> DeviceStatus | None:
    """A device's latest known liveness, locked for update."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT device_id, resident_id, kind, state, at, battery FROM telemetry.device_status"
            " WHERE device_id = %s FOR UPDATE",
            (device_id,),
        ).fetchone()
    return DeviceStatus(**row) if row else None


def save_device_status(conn: psycopg.Connection, value: DeviceStatus, due_at: datetime | None) -> None:
    conn.execute(
        "INSERT INTO telemetry.device_status (device_id, resident_id, kind, state, at, battery, due_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET resident_id = EXCLUDED.resident_id, kind = EXCLUDED.kind,"
        " state = EXCLUDED.state, at = EXCLUDED.at, battery = EXCLUDED.battery, due_at = EXCLUDED.due_at,"
        " updated_at = now()",
        (value.device_id, value.resident_id, value.kind, value.state, value.at, value.battery, due_at),
    )


def clear_device_due(conn: psycopg.Connection, device_id: str) -> None:
    conn.execute("UPDATE telemetry.device_status SET due_at = NULL WHERE device_id = %s", (device_id,))


def due_devices(conn: psycopg.Connection, now: datetime, limit: int = 500) -> list[DeviceStatus]:
    """Devices whose offline timer is due, locked (skipping those another replica holds)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT device_id, resident_id, kind, state, at, battery FROM telemetry.device_status"
            " WHERE due_at <= %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
    return [DeviceStatus(**r) for r in rows]


_KEY_COLUMNS = "device_id, service, resident_id, started_at, last_at, presses, stuck_since, last_event_id, clear_due"


def _key(row: dict) -> ButtonKey:
    run = PressRun(row["started_at"], row["last_at"], row["presses"], row["stuck_since"])
    return ButtonKey(row["device_id"], row["service"], row["resident_id"], run, row["last_event_id"],
                     row["clear_due"])


def button_key(conn: psycopg.Connection, device_id: str, service: str) -> ButtonKey | None:
    """A button key's state, locked for update; None before its first press (or after a clear)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_KEY_COLUMNS} FROM telemetry.button_keys WHERE device_id = %s AND service = %s FOR UPDATE",
            (device_id, service),
        ).fetchone()
    return _key(row) if row else None


def save_button_key(conn: psycopg.Connection, value: ButtonKey) -> None:
    run = value.run
    conn.execute(
        f"INSERT INTO telemetry.button_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id, service) DO UPDATE SET resident_id = EXCLUDED.resident_id,"
        " started_at = EXCLUDED.started_at, last_at = EXCLUDED.last_at, presses = EXCLUDED.presses,"
        " stuck_since = EXCLUDED.stuck_since, last_event_id = EXCLUDED.last_event_id,"
        " clear_due = EXCLUDED.clear_due, updated_at = now()",
        (value.device_id, value.service, value.resident_id, run.started, run.last, run.presses, run.stuck_since,
         value.last_event_id, value.clear_due),
    )


def forget_button_key(conn: psycopg.Connection, device_id: str, service: str) -> None:
    """The key's run is over (its alert cleared): a later press starts afresh."""
    conn.execute("DELETE FROM telemetry.button_keys WHERE device_id = %s AND service = %s", (device_id, service))


def due_button_keys(conn: psycopg.Connection, now: datetime, limit: int = 500) -> list[ButtonKey]:
    """Keys whose stuck run has been quiet long enough, locked (skipping those another replica holds)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_KEY_COLUMNS} FROM telemetry.button_keys WHERE clear_due <= %s ORDER BY clear_due LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
    return [_key(r) for r in rows]


def stuck_keys_left(conn: psycopg.Connection, device_id: str) -> int:
    """Keys of a device whose stuck run has not cleared yet."""
    row = conn.execute(
        "SELECT count(*) FROM telemetry.button_keys WHERE device_id = %s AND clear_due IS NOT NULL", (device_id,)
    ).fetchone()
    return int(row[0] if not isinstance(row, dict) else next(iter(row.values())))
_SELFTEST_COLUMNS = "device_id, resident_id, kind, last_at, result, failed, trigger, misses, due_at"


def _selftest(row: dict) -> SelftestRecord:
    return SelftestRecord(**{**row, "failed": tuple(row["failed"])})


def selftest(conn: psycopg.Connection, device_id: str) -> SelftestRecord | None:
    """A device's latest self-test, locked for update; None when it never sent one."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_SELFTEST_COLUMNS} FROM telemetry.device_selftests WHERE device_id = %s FOR UPDATE",
            (device_id,),
        ).fetchone()
    return _selftest(row) if row else None


def save_selftest(conn: psycopg.Connection, value: SelftestRecord) -> None:
    conn.execute(
        f"INSERT INTO telemetry.device_selftests ({_SELFTEST_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET resident_id = EXCLUDED.resident_id, kind = EXCLUDED.kind,"
        " last_at = EXCLUDED.last_at, result = EXCLUDED.result, failed = EXCLUDED.failed,"
        " trigger = EXCLUDED.trigger, misses = EXCLUDED.misses, due_at = EXCLUDED.due_at, updated_at = now()",
        (value.device_id, value.resident_id, value.kind, value.last_at, value.result, list(value.failed),
         value.trigger, value.misses, value.due_at),
    )


def due_selftests(conn: psycopg.Connection, now: datetime, limit: int = 500) -> list[SelftestRecord]:
    """Devices whose next self-test is overdue, locked (skipping those another replica holds)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_SELFTEST_COLUMNS} FROM telemetry.device_selftests"
            " WHERE due_at <= %s ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
    return [_selftest(r) for r in rows]
