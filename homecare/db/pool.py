"""Connection pools (psycopg 3)."""

from __future__ import annotations

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def open_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "homecare") -> ConnectionPool:
    """An open pool of dict-row connections; callers own the transactions."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": False},
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
