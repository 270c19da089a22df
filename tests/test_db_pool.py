"""The services' connection pool: JIT compilation is off on every connection, which comes out of
the pool idle (the setting does not leave a transaction open)."""

from __future__ import annotations

from psycopg import pq

from homecare.db.pool import open_pool


def test_connections_come_with_jit_off_and_idle(database_url):
    pool = open_pool(database_url, min_size=2, max_size=2, name="pool-test")
    try:
        for _ in range(2):
            with pool.connection() as conn:
                assert conn.info.transaction_status == pq.TransactionStatus.IDLE
                assert conn.execute("SHOW jit").fetchone()["jit"] == "off"
    finally:
        pool.close()
