"""How far the database's write-ahead log is on disk: what lets a consumer commit without waiting
for the disk and still acknowledge its message only once its effect is safe.

A commit waits for its WAL to be flushed. On the machine of bench.load that flush took 0.3-1.4 s
a few times a minute (the disk busy with the samples' pages), and every press waiting on it
waited that long for its light. A message from the log needs no such wait: it stays in JetStream,
unacknowledged, until its effect is on disk. So a consumer commits with `synchronous_commit =
off` (visible at once: the command it wrote goes out now) and hands the runtime a `Flushed`,
which says when the commit has reached the disk; the message is acknowledged then.

A database that crashed meanwhile lost the commit and will write new WAL at the same positions:
the server's start time, read with the position, tells a restarted server apart, and the message
is then handled again (EffectLost), never acknowledged for an effect that is gone."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from homecare.errors import EffectLost

from .autocommit import execute_alone

_POSITION = "SELECT {}::text AS lsn, pg_postmaster_start_time() AS started"


def commit_without_waiting(conn: psycopg.Connection) -> None:
    """Make the open transaction's commit return before its WAL is on disk (`SET LOCAL`: this
    transaction only). For a transaction whose loss in a database crash is made good anyway: by
    the log redelivering its message (with `WalWatch`), or because it is redone from rows."""
    conn.execute("SET LOCAL synchronous_commit = off")


def lsn_value(text: str) -> int:
    """A pg_lsn ('16/B374D848') as a number that orders like it."""
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


class WalWatch:
    """Reads how far the WAL is flushed, at most every `every_s` whoever asks (one query serves
    every message waiting)."""

    def __init__(self, pool: ConnectionPool, every_s: float = 0.01):
        self.pool = pool
        self.every_s = every_s
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._flushed: tuple[int, datetime] | None = None

    def mark(self, conn: psycopg.Connection) -> Flushed:
        """Right after a commit on `conn`: where that commit's WAL ends (at most)."""
        row = execute_alone(conn, _POSITION.format("pg_current_wal_insert_lsn()"))[0]
        return Flushed(self, lsn_value(_get(row, "lsn")), _get(row, "started"))

    def flushed(self) -> tuple[int, datetime]:
        """(the WAL position on disk, when the server started); raises when it cannot be read."""
        with self._lock:
            if self._flushed is None or time.monotonic() - self._read_at >= self.every_s:
                with self.pool.connection() as conn:
                    row = execute_alone(conn, _POSITION.format("pg_current_wal_flush_lsn()"))[0]
                self._flushed = (lsn_value(_get(row, "lsn")), _get(row, "started"))
                self._read_at = time.monotonic()
            return self._flushed


@dataclass(frozen=True)
class Flushed:
    """A commit's place in the WAL: `durable()` once it is on disk (the consumer runtime's
    `Durable`); EffectLost if the server restarted before it was."""

    watch: WalWatch
    lsn: int
    server_started: datetime

    def durable(self) -> bool:
        flushed, started = self.watch.flushed()
        if started != self.server_started:
            raise EffectLost("the database restarted before the commit reached its disk")
        return flushed >= self.lsn


def _get(row, key: str):
    return row[key] if isinstance(row, dict) else row[0 if key == "lsn" else 1]
