"""The change listener on a real PostgreSQL: delivery, fan-out, and recovery after a drop."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from console.changes import APPLICATION_NAME, CLOSED, RESYNC, ChangeHub


def notify(database_url: str, channel: str, payload: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def collect(sub, until, timeout: float = 10.0) -> list[str]:
    """Items from the subscription until `until(items)` holds; fails after `timeout`."""
    items: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not until(items):
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"timed out; got {items}")
        items += await sub.next_batch(left, 0)
    return items


@pytest.fixture
def channel() -> str:
    return f"console_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hub(database_url, channel):
    h = ChangeHub(database_url, channel, reconnect_max_s=0.5)
    h.start()
    assert h.listening
    yield h
    h.stop()


def test_every_subscriber_gets_each_notification(hub, database_url, channel):
    async def scenario():
        first, second = hub.subscribe(), hub.subscribe()
        await asyncio.to_thread(notify, database_url, channel, "req-1")
        await asyncio.to_thread(notify, database_url, channel, "req-2")
        got_first = await collect(first, lambda items: "req-2" in items)
        got_second = await collect(second, lambda items: "req-2" in items)
        return got_first, got_second

    got_first, got_second = asyncio.run(scenario())

    assert got_first == ["req-1", "req-2"]
    assert got_second == ["req-1", "req-2"]


def test_it_reconnects_after_the_connection_is_killed_and_asks_for_a_resync(
    hub, database_url, channel
):
    async def scenario():
        sub = hub.subscribe()
        with psycopg.connect(database_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()) t",
                (APPLICATION_NAME,),
            ).fetchone()[0]
        assert killed >= 1
        await collect(sub, lambda items: RESYNC in items)  # back, and says what it missed
        await asyncio.to_thread(notify, database_url, channel, "after-drop")
        return await collect(sub, lambda items: "after-drop" in items)

    assert "after-drop" in asyncio.run(scenario())
    assert hub.listening


def test_stop_ends_every_subscription(database_url, channel):
    hub = ChangeHub(database_url, channel)
    hub.start()

    async def scenario():
        sub = hub.subscribe()
        await asyncio.to_thread(hub.stop)
        return await collect(sub, lambda items: CLOSED in items)

    assert CLOSED in asyncio.run(scenario())
    assert not hub.listening


def test_a_subscriber_that_falls_far_behind_resyncs_instead_of_growing(hub):
    async def scenario():
        sub = hub.subscribe()
        for i in range(1500):
            sub.offer(f"r-{i}")
        return await sub.next_batch(1, 0)

    items = asyncio.run(scenario())

    assert RESYNC in items
    assert len(items) <= 1000
