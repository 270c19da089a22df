"""NOTIFYs sent right after a transaction commits, not inside it.

PostgreSQL serialises the commits of every transaction that NOTIFYs: at commit it takes one lock
for the whole database (to keep the notification queue in commit order) and holds it until the
commit is flushed to disk. Dispatch NOTIFYs in nearly every transaction (a request's change, a
command in the outbox), so its commits went one at a time, each with its own disk flush; when
autovacuum made those flushes slow, every press queued behind them (bench.load at 10,000
devices: commits waiting on that lock in a quarter of the samples of pg_stat_activity).

Here a transaction records what it would NOTIFY, and the notifications go in a statement of
their own once it has committed: that statement writes nothing, so its commit does not wait for
the disk, and it holds the lock only for the time it takes to queue them. What listeners see is
the same: a notification only for a committed change, none for a rolled-back one, each
(channel, payload) once per transaction. A process that dies between the commit and the notices
sends none: every listener here also polls or resyncs (the outbox publisher polls, the console
reloads a board now and then), as they must anyway for a listener that was disconnected.

A connection that is not a NoticeConnection (a test's own) NOTIFYs inside the transaction, as
before."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import pq

from .autocommit import execute_alone

log = logging.getLogger(__name__)


class NoticeConnection(psycopg.Connection):
    """A connection whose `transaction()` blocks send their notices after the outermost commits."""

    _notice_levels: list[dict[tuple[str, str], None]]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._notice_levels = []  # one ordered set per open transaction() block, outermost first

    @contextmanager
    def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> Iterator:
        if not self._notice_levels and self.info.transaction_status != pq.TransactionStatus.IDLE:
            # A savepoint in a transaction begun without transaction(): nothing tells us when that
            # one commits, so its notices go inside it, as PostgreSQL would send them.
            with super().transaction(savepoint_name, force_rollback) as tx:
                yield tx
            return
        self._notice_levels.append({})
        committed = False
        try:
            with super().transaction(savepoint_name, force_rollback) as tx:
                try:
                    yield tx
                except psycopg.Rollback:
                    raise  # the block asked for a rollback: psycopg swallows it, its notices go
                else:
                    committed = not force_rollback
        finally:
            level = self._notice_levels.pop()
        if not committed:
            return
        if self._notice_levels:  # a savepoint: its notices go with the enclosing transaction's
            self._notice_levels[-1].update(level)
        elif level:
            self._send(list(level))

    def notify_after_commit(self, channel: str, payload: str) -> None:
        if not self._notice_levels:  # outside transaction(): nothing tells us when it commits
            self.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            return
        self._notice_levels[-1][(channel, payload)] = None

    def _send(self, notices: list[tuple[str, str]]) -> None:
        try:
            execute_alone(
                self, "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)",
                ([c for c, _ in notices], [p for _, p in notices]),
            )
        except psycopg.Error as exc:
            # The change is committed; failing the caller would only make it retry what is done.
            # Listeners catch up by their own polling or resync.
            log.warning("could not send %d notices after a commit: %s", len(notices), exc)


def notify(conn: psycopg.Connection, channel: str, payload: str) -> None:
    """NOTIFY `channel` with `payload` once this transaction commits (dropped if it rolls back)."""
    if isinstance(conn, NoticeConnection):
        conn.notify_after_commit(channel, payload)
    else:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
