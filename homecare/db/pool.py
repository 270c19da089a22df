"""Connection pools (psycopg 3)."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def _configure(conn: psycopg.Connection) -> None:
    # Our statements are short, over arrays of parameters whose size the planner cannot know:
    # its estimates can pass jit_above_cost, and compiling then takes longer (0.4 s seen on a
    # rollup pass) than running the statement.
    conn.execute("SET jit = off")
    conn.commit()


def open_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "homecare") -> ConnectionPool:
    """An open pool of dict-row connections; callers own the transactions."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": False},
        configure=_configure,
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
