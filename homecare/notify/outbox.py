"""The notice outbox on PostgreSQL: one table per service, in that service's schema
(`<schema>.notifications`, created by the service's own migration). A notice is written in the
transaction of the change that causes it, so a crash loses both or neither; the sender claims it
(`FOR UPDATE SKIP LOCKED`, so replicas share the work), routes it once, and keeps each
delivery's state in the row until every one is sent or has failed for good."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .model import Delivery, Notice


class NoticeOutbox:
    """The notifications table of one schema."""

    def __init__(self, schema: str):
        self.schema = schema
        self._table = sql.Identifier(schema, "notifications")

    def put(self, conn: psycopg.Connection, notice: Notice, at: datetime | None = None) -> int:
        """Queue a notice in the caller's transaction; its id."""
        row = conn.execute(
            sql.SQL("INSERT INTO {} (subject_id, notice, due_at) VALUES (%s, %s, coalesce(%s, now())) RETURNING id")
            .format(self._table),
            (notice.subject_id, Jsonb(notice.as_json()), at),
        ).fetchone()
        assert row is not None
        return int(row[0] if isinstance(row, tuple) else next(iter(row.values())))

    def claim(self, conn: psycopg.Connection, now: datetime, hold_until: datetime) -> dict[str, Any] | None:
        """The most overdue notice not finished, held until `hold_until` (a replica that dies
        while sending leaves it to another after that)."""
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                sql.SQL("SELECT id, notice, deliveries FROM {} WHERE done_at IS NULL AND due_at <= %s"
                        " ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED").format(self._table),
                (now,),
            ).fetchone()
            if row is None:
                return None
            cur.execute(sql.SQL("UPDATE {} SET due_at = %s WHERE id = %s").format(self._table), (hold_until, row["id"]))
        return row

    def save(
        self, conn: psycopg.Connection, notice_id: int, notice: Notice, deliveries: list[Delivery],
        due_at: datetime | None, done_at: datetime | None,
    ) -> None:
        """Record the deliveries' states; the next look at `due_at`, or finished at `done_at`."""
        conn.execute(
            sql.SQL("UPDATE {} SET notice = %s, deliveries = %s, due_at = coalesce(%s, due_at), done_at = %s"
                    " WHERE id = %s").format(self._table),
            (Jsonb(notice.as_json()), Jsonb([d.as_json() for d in deliveries]), due_at, done_at, notice_id),
        )

    def of(self, conn: psycopg.Connection, subject_id: str) -> list[dict[str, Any]]:
        """The notices of one request or alert, oldest first (tests, diagnostics)."""
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                sql.SQL("SELECT id, notice, deliveries, created_at, due_at, done_at FROM {}"
                        " WHERE subject_id = %s ORDER BY id").format(self._table),
                (subject_id,),
            ).fetchall()


def notice_of(raw: dict[str, Any]) -> Notice:
    fields = {k: raw.get(k) for k in asdict(Notice("", "", "", "", None, "", "")).keys()}
    return Notice(**fields)
