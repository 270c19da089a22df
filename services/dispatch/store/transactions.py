"""Transactions on PostgreSQL (`usecases.ports.Transactions`): the timer loop's, from the pool, and
one after another on a connection a caller already holds (a route's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from homecare.db.wal import commit_without_waiting


class PostgresTransactions:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    @contextmanager
    def begin(self) -> Iterator[psycopg.Connection]:
        """A transaction that commits without waiting for the disk: the row locks it holds (a
        request, a provider) would otherwise be held through a slow WAL flush, and a press on that
        request waits. A commit lost in a database crash is redone: every timer is a row, left as
        it was, due again at the next tick."""
        with self.pool.connection() as conn, conn.transaction():
            commit_without_waiting(conn)
            yield conn

    def savepoint(self, conn: psycopg.Connection) -> AbstractContextManager[object]:
        return conn.transaction()


class ConnectionTransactions:
    """Transactions one after another on a connection the caller holds (an API route's): a use
    case that must not hold one transaction throughout (day planning, whose solver runs between
    two) gets each `begin` as a transaction of its own. What the connection had begun (the
    route's sign-in check) is committed first, or each `begin` would be a savepoint in it."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    @contextmanager
    def begin(self) -> Iterator[psycopg.Connection]:
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.commit()
        with self.conn.transaction():
            yield self.conn

    def savepoint(self, conn: psycopg.Connection) -> AbstractContextManager[object]:
        return conn.transaction()
