"""Devices' connections as dispatch records them: a batch in one statement, the newest state of
each device winning, a state older than the one recorded changing nothing, and a connect storm's
states through the log with a malformed one among them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from homecare.log import streams
from services.dispatch.store import devices
from tests.support import wait_for


def _row(pool, device_id: str):
    with pool.connection() as conn:
        row = conn.execute("SELECT shard, state, first_seen_at, state_at FROM dispatch.devices"
                           " WHERE device_id = %s", (device_id,)).fetchone()
    return None if row is None else tuple(row.values())


def test_a_batch_keeps_each_devices_newest_state_and_says_which_devices_are_new(pool):
    t0 = datetime.now(UTC)
    known, new = f"d-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    with pool.connection() as conn, conn.transaction():
        assert devices.record_states(conn, [(known, "a", "online", t0)]) == {known}
    with pool.connection() as conn, conn.transaction():
        first = devices.record_states(conn, [
            (new, "a", "online", t0 + timedelta(seconds=1)),
            (new, "b", "offline", t0 + timedelta(seconds=3)),  # the newest of the batch
            (new, "a", "online", t0 + timedelta(seconds=2)),
            (known, "b", "offline", t0 - timedelta(seconds=5)),  # older than what is recorded
        ])
    assert first == {new}
    shard, state, first_seen, state_at = _row(pool, new)
    assert (shard, state, state_at) == ("b", "offline", t0 + timedelta(seconds=3))
    assert first_seen == t0 + timedelta(seconds=1)
    assert _row(pool, known)[:2] == ("a", "online")


def test_a_connect_storms_states_are_recorded_and_a_malformed_one_dead_lettered(pool, start_dispatch, bus):
    storm = [f"storm-{uuid.uuid4().hex[:8]}" for _ in range(300)]
    for device_id in storm[:150]:
        bus.connect(device_id)
    bus.tap.publish(bus.tap.subjects.state("broken-1"), b'{"device_id": "broken-1", "state": "sideways"}')
    for device_id in storm[150:]:
        bus.connect(device_id)
    start_dispatch()  # after the storm: it comes in batches of 200, the malformed one in the first

    with pool.connection() as conn:
        def recorded() -> int:
            return conn.execute("SELECT count(*) AS n FROM dispatch.devices WHERE device_id = ANY(%s)",
                                (storm,)).fetchone()["n"]
        wait_for(lambda: recorded() == 300, timeout=20, what="every state of the storm recorded")
    assert _row(pool, "broken-1") is None
    dead = wait_for(lambda: [m for m in bus.tap.messages(streams.DEAD)
                             if m.headers.get("Homecare-Consumer") == "dispatch-devices"],
                    timeout=20, what="the malformed state dead-lettered")
    assert [m.data for m in dead] == [b'{"device_id": "broken-1", "state": "sideways"}']
    assert dead[0].headers["Homecare-Reason"].startswith("rejected:")
