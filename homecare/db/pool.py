"""Connection pools (psycopg 3)."""

from __future__ import annotations

import psycopg
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .notices import NoticeConnection


def _configure(conn: psycopg.Connection) -> None:
    # Our statements are short, over arrays of parameters whose size the planner cannot know:
    # its estimates can pass jit_above_cost, and compiling then takes longer (0.4 s seen on a
    # rollup pass) than running the statement.
    conn.execute("SET jit = off")
    conn.commit()


def open_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "homecare") -> ConnectionPool:
    """An open pool of dict-row connections; callers own the transactions. Their NOTIFYs (see
    `notices`) go right after the commit."""
    pool = ConnectionPool(
        url,
        connection_class=NoticeConnection,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": False},
        configure=_configure,
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    _POOLS.watch(name, pool)
    return pool


class _PoolCollector:
    """The pools' own counters on /metrics: time spent waiting for a connection is the first sign
    that a component's threads outnumber its connections."""

    def __init__(self):
        self.pools: dict[str, ConnectionPool] = {}  # by name: a pool reopened (tests) replaces its predecessor
        self._registered = False

    def watch(self, name: str, pool: ConnectionPool) -> None:
        self.pools[name] = pool
        if not self._registered:
            REGISTRY.register(self)
            self._registered = True

    def collect(self):
        gauges = {
            key: GaugeMetricFamily(metric, help_, labels=["pool"]) for metric, help_, key in (
                ("homecare_db_pool_connections", "Connections the pool holds", "pool_size"),
                ("homecare_db_pool_available", "Connections idle in the pool", "pool_available"),
                ("homecare_db_pool_max", "Connections the pool may hold", "pool_max"),
                ("homecare_db_pool_waiting", "Threads waiting for a connection now", "requests_waiting"),
            )
        }
        waits = CounterMetricFamily("homecare_db_pool_wait_seconds", "Time threads spent waiting for a connection",
                                    labels=["pool"])
        queued = CounterMetricFamily("homecare_db_pool_queued", "Requests for a connection that had to wait",
                                     labels=["pool"])
        for name, pool in list(self.pools.items()):
            stats = pool.get_stats()
            for key, gauge in gauges.items():
                gauge.add_metric([name], stats.get(key, 0))
            waits.add_metric([name], stats.get("requests_wait_ms", 0) / 1000)
            queued.add_metric([name], stats.get("requests_queued", 0))
        yield from gauges.values()
        yield waits
        yield queued


_POOLS = _PoolCollector()
