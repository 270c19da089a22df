"""Transactions on PostgreSQL for the timer loop (`usecases.ports.Transactions`)."""

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
