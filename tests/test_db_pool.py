"""The services' connection pool: JIT compilation is off on every connection, which comes out of
the pool idle (the setting does not leave a transaction open); waits for a connection show on
/metrics."""

from __future__ import annotations

import threading
import time

from prometheus_client import REGISTRY
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


def test_waiting_for_a_connection_shows_on_metrics(database_url):
    pool = open_pool(database_url, min_size=1, max_size=1, name="pool-wait-test")
    held = threading.Event()

    def hold() -> None:
        with pool.connection():
            held.set()
            time.sleep(0.3)

    try:
        before = _sample("homecare_db_pool_queued_total")
        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        with pool.connection() as conn:  # waits for the holder's
            conn.execute("SELECT 1")
        holder.join()
        assert _sample("homecare_db_pool_queued_total") == before + 1
        assert _sample("homecare_db_pool_wait_seconds_total") >= 0.1
        assert _sample("homecare_db_pool_max") == 1
    finally:
        pool.close()


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"pool": "pool-wait-test"})
    return 0.0 if value is None else value
