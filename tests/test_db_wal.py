"""The WAL watch (homecare.db.wal): where a commit made without waiting for the disk ends in the
WAL, and when the server has flushed that far; a restarted server is told apart."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from homecare.db.wal import Flushed, WalWatch, lsn_value
from homecare.errors import EffectLost


def test_positions_order_as_numbers():
    assert lsn_value("0/16B3748") < lsn_value("0/FFFFFFFF") < lsn_value("1/0") < lsn_value("16/B374D848")


def test_an_asynchronous_commit_is_reported_durable_once_flushed(pool):
    watch = WalWatch(pool, every_s=0.0)
    with pool.connection() as conn:
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("CREATE TABLE IF NOT EXISTS public.wal_probe (x int)")
            conn.execute("INSERT INTO public.wal_probe VALUES (1)")
        mark = watch.mark(conn)
    flushed, _ = watch.flushed()
    assert mark.lsn > 0
    deadline = time.monotonic() + 5  # the WAL writer flushes within wal_writer_delay (200 ms)
    while not mark.durable():
        assert time.monotonic() < deadline, (hex(flushed), hex(mark.lsn))
        time.sleep(0.01)
    assert watch.flushed()[0] >= mark.lsn


def test_a_commit_made_before_the_server_restarted_is_lost_not_durable(pool):
    watch = WalWatch(pool, every_s=0.0)
    with pool.connection() as conn:
        mark = watch.mark(conn)
    before_restart = Flushed(watch, mark.lsn, mark.server_started - timedelta(seconds=5))
    with pytest.raises(EffectLost):
        before_restart.durable()
