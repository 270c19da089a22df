"""NOTIFYs sent after the commit (homecare.db.notices): a listener hears of a change only once it
is committed, never of a rolled-back one, once per transaction, and the notification is not
part of the transaction that made the change."""

from __future__ import annotations

import psycopg
import pytest

from homecare.db import notices
from homecare.db.pool import open_pool

CHANNEL = "notices_test"


@pytest.fixture
def listener(database_url):
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    yield conn
    conn.close()


@pytest.fixture
def notice_pool(database_url):
    pool = open_pool(database_url, min_size=1, max_size=2, name="notices-test")
    yield pool
    pool.close()


def heard(listener: psycopg.Connection, timeout: float = 0.5) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=timeout)]


def test_a_notice_arrives_once_the_transaction_commits_and_once_only(notice_pool, listener):
    with notice_pool.connection() as conn:
        with conn.transaction():
            notices.notify(conn, CHANNEL, "r-1")
            notices.notify(conn, CHANNEL, "r-1")
            notices.notify(conn, CHANNEL, "r-2")
            assert heard(listener, 0.3) == []  # not before the commit
        assert heard(listener) == ["r-1", "r-2"]


def test_the_notification_is_not_part_of_the_change_s_transaction(notice_pool, listener, database_url):
    """The point of the module: the change's commit does not NOTIFY (PostgreSQL would hold its
    database-wide notify lock through that commit's disk flush); a statement after it does. A
    notification PostgreSQL refuses (a payload over 8,000 bytes) shows it: the change commits all
    the same, only the notice is lost (and logged)."""
    with psycopg.connect(database_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS public.notices_probe (x text)")
    with notice_pool.connection() as conn:
        with conn.transaction():
            notices.notify(conn, CHANNEL, "x" * 9000)
            conn.execute("INSERT INTO public.notices_probe VALUES ('kept')")
        with conn.transaction():
            notices.notify(conn, CHANNEL, "next")
        assert conn.execute("SELECT count(*) AS n FROM public.notices_probe WHERE x = 'kept'").fetchone()["n"] >= 1
        conn.rollback()
    assert heard(listener) == ["next"]
    with psycopg.connect(database_url) as plain, pytest.raises(psycopg.errors.InvalidParameterValue):
        notices.notify(plain, CHANNEL, "x" * 9000)  # inside the transaction it would have failed it


def test_a_rolled_back_transaction_sends_nothing(notice_pool, listener):
    with notice_pool.connection() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            notices.notify(conn, CHANNEL, "failed")
            raise RuntimeError("the change failed")
        with conn.transaction():
            notices.notify(conn, CHANNEL, "asked-to-roll-back")
            raise psycopg.Rollback()
        with conn.transaction(force_rollback=True):
            notices.notify(conn, CHANNEL, "forced")
        assert heard(listener) == []


def test_a_savepoint_rolled_back_drops_only_its_own_notices(notice_pool, listener):
    with notice_pool.connection() as conn:
        with conn.transaction():
            notices.notify(conn, CHANNEL, "outer")
            with pytest.raises(RuntimeError), conn.transaction():
                notices.notify(conn, CHANNEL, "inner-failed")
                raise RuntimeError("the savepoint failed")
            with conn.transaction():
                notices.notify(conn, CHANNEL, "inner-kept")
        assert heard(listener) == ["outer", "inner-kept"]


def test_a_plain_connection_notifies_inside_its_transaction(database_url, listener):
    with psycopg.connect(database_url) as conn:
        notices.notify(conn, CHANNEL, "plain")
        assert heard(listener, 0.3) == []
        conn.commit()
    assert heard(listener) == ["plain"]


def test_a_block_inside_a_transaction_begun_without_one_notifies_inside_it(notice_pool, listener):
    with notice_pool.connection() as conn:
        conn.execute("SELECT 1")  # begins a transaction implicitly
        with conn.transaction():  # a savepoint: its notices cannot wait for a commit we will not see
            notices.notify(conn, CHANNEL, "implicit")
        assert heard(listener, 0.3) == []
        conn.commit()
        assert heard(listener) == ["implicit"]
