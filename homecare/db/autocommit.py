"""One statement as a transaction of its own, in one round trip."""

from __future__ import annotations

from typing import Any

import psycopg


def execute_alone(conn: psycopg.Connection, query: str, params: Any = None) -> list:
    """Run `query` on a connection between transactions, in autocommit for its length (a
    transaction block would add a BEGIN and a COMMIT round trip); its rows. The connection goes
    back to how it was."""
    was = conn.autocommit
    conn.autocommit = True
    try:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []
    finally:
        conn.autocommit = was
