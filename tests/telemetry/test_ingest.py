"""Ingest from the real log: at least once delivery, each sample stored once."""

from __future__ import annotations

import time
from datetime import timedelta

from homecare.log import streams
from services.telemetry.queries import count_samples
from tests.support import unique, wait_for

from .conftest import metric
from .helpers import as_tuples, base_time, message, series, stored_rows

DUPLICATES = "homecare_telemetry_samples_duplicates_total"
STORED = "homecare_telemetry_samples_stored_total"
REJECTED = "homecare_telemetry_messages_rejected_total"
WRITE_ERRORS = "homecare_telemetry_write_errors_total"


def _count(pool, device_id: str) -> int:
    with pool.connection() as conn:
        return count_samples(conn, device_id)


def _dead_letters(log_tap) -> list:
    return log_tap.messages(streams.DEAD)


def test_a_batch_sent_twice_and_overlapping_batches_are_stored_once(pool, make_component, publisher):
    make_component()
    bed_a, bed_b = unique("bed"), unique("bed")
    start = base_time()
    a1, a2 = series(start, 20, seed=1), series(start + timedelta(seconds=10), 20, seed=2)
    b = series(start, 15, seed=3)
    duplicates = metric(DUPLICATES)
    first = message((bed_a, "res-a", a1), (bed_b, "res-b", b))
    publisher.telemetry(first)
    publisher.telemetry(first)  # stored twice in the log (a bridge's ack lost, say)
    publisher.telemetry(message((bed_a, "res-a", a2)))  # overlaps a1 by 10 samples
    wait_for(lambda: metric(DUPLICATES) - duplicates == 35 + 10, what="every sample processed")
    assert _count(pool, bed_a) == 30 and _count(pool, bed_b) == 15
    assert stored_rows(pool, bed_a) == as_tuples(a1 + a2[10:])
    assert stored_rows(pool, bed_b) == as_tuples(b)


def test_an_unparseable_message_is_dead_lettered_with_its_reason_and_the_others_are_stored(
    pool, make_component, publisher, log_tap
):
    component = make_component()
    rejected, stored = metric(REJECTED, topic="telemetry", reason="unparseable"), metric(STORED)
    bed = unique("bed")
    publisher.raw_telemetry("bed-x", b'{"device_id": 5}')
    publisher.telemetry(message((bed, "res", series(base_time(), 5))))
    wait_for(lambda: _count(pool, bed) == 5, what="the good message stored")
    wait_for(lambda: metric(STORED) - stored == 5, what="the write counted")
    dead = log_tap.wait_messages(streams.DEAD, 1)
    assert dead[0].data == b'{"device_id": 5}'
    assert dead[0].headers["Homecare-Consumer"] == "telemetry-samples"
    assert "not a device batch" in dead[0].headers["Homecare-Reason"]
    assert metric(REJECTED, topic="telemetry", reason="unparseable") - rejected == 1
    # Both were acknowledged: a restart of the replica (same durable consumer) gets neither again.
    component.stop()
    make_component()
    time.sleep(1.0)
    assert metric(REJECTED, topic="telemetry", reason="unparseable") - rejected == 1
    assert metric(STORED) - stored == 5 and _count(pool, bed) == 5
    assert len(_dead_letters(log_tap)) == 1


def _break_database(pool) -> None:
    with pool.connection() as conn:
        conn.execute("ALTER TABLE telemetry.latest_samples RENAME TO latest_samples_away")


def _repair_database(pool) -> None:
    with pool.connection() as conn:
        conn.execute("ALTER TABLE telemetry.latest_samples_away RENAME TO latest_samples")


def test_a_failing_database_leaves_messages_unacked_and_they_are_retried(
    pool, make_component, publisher
):
    make_component()
    bed = unique("bed")
    samples = series(base_time(), 10)
    errors = metric(WRITE_ERRORS)
    _break_database(pool)
    try:
        publisher.telemetry(message((bed, "res", samples)))
        wait_for(lambda: metric(WRITE_ERRORS) - errors >= 2, what="the write failing and retried")
        assert _count(pool, bed) == 0
    finally:
        _repair_database(pool)
    wait_for(lambda: _count(pool, bed) == 10, what="the retried write stored")
    assert stored_rows(pool, bed) == as_tuples(samples)


def test_messages_unacked_at_stop_are_redelivered_to_the_restarted_replica(
    pool, make_component, publisher
):
    component = make_component()
    bed = unique("bed")
    samples = series(base_time(), 8)
    errors = metric(WRITE_ERRORS)
    _break_database(pool)
    try:
        publisher.telemetry(message((bed, "res", samples)))
        wait_for(lambda: metric(WRITE_ERRORS) > errors, what="the write failing")
        component.stop()  # its final attempt fails too: the message is handed back, not acked
    finally:
        _repair_database(pool)
    assert _count(pool, bed) == 0
    make_component()  # the same durable consumer delivers it again
    wait_for(lambda: _count(pool, bed) == 8, what="the redelivered message stored")
    assert stored_rows(pool, bed) == as_tuples(samples)


def test_many_messages_in_one_window_are_written_together(pool, make_component, publisher):
    make_component()
    beds = [unique("bed") for _ in range(30)]
    start = base_time()
    for i, bed in enumerate(beds):
        publisher.telemetry(message((bed, f"res-{i}", series(start, 10, seed=i))))
    wait_for(lambda: all(_count(pool, bed) == 10 for bed in beds), what="all beds stored")
    with pool.connection() as conn:
        latest = conn.execute(
            "SELECT count(*) AS n FROM telemetry.latest_samples WHERE device_id = ANY(%s)", (beds,)
        ).fetchone()
    assert latest["n"] == 30


def test_a_message_the_database_refuses_is_dropped_and_the_others_are_stored(
    pool, make_component, publisher, log_tap
):
    with pool.connection() as conn:
        conn.execute(
            "ALTER TABLE telemetry.bed_samples ADD CONSTRAINT test_poison"
            " CHECK (heart_rate IS DISTINCT FROM 249)"
        )
    rejected = metric(REJECTED, topic="telemetry", reason="unstorable")
    good, poisoned, later = unique("bed"), unique("bed"), unique("bed")
    poison = series(base_time(), 3)
    poison[1] = poison[1].model_copy(update={"occupied": True, "heart_rate": 249})
    try:
        # Stored before the consumer starts, so that they come in one fetch (one transaction).
        publisher.telemetry(message((good, "res", series(base_time(), 4))))
        publisher.telemetry(message((poisoned, "res", poison)))
        publisher.telemetry(message((later, "res", series(base_time(), 6))))
        make_component()
        wait_for(lambda: _count(pool, good) == 4 and _count(pool, later) == 6, what="good ones stored")
        wait_for(
            lambda: metric(REJECTED, topic="telemetry", reason="unstorable") - rejected == 1,
            what="the refused message counted",
        )
        assert _count(pool, poisoned) == 0
        dead = log_tap.wait_messages(streams.DEAD, 1)
        assert dead[0].headers["Homecare-Subject"] == log_tap.subjects.telemetry(poisoned)
        assert "the database refuses it" in dead[0].headers["Homecare-Reason"]
    finally:
        with pool.connection() as conn:
            conn.execute("ALTER TABLE telemetry.bed_samples DROP CONSTRAINT test_poison")


def test_two_replicas_share_the_consumer_and_store_overlapping_batches_once(
    pool, make_component, publisher
):
    make_component()
    make_component(replica="b")
    beds = [unique("bed") for _ in range(5)]
    start = base_time()
    # Every bed's 60 s are sent as 10 overlapping 12 s batches, spread over both replicas.
    payloads = [
        message(*[
            (bed, f"res-{i}", series(start + timedelta(seconds=6 * k), 12, seed=i))
            for i, bed in enumerate(beds)
        ])
        for k in range(10)
    ]
    for payload in payloads:
        publisher.telemetry(payload)
    wait_for(lambda: all(_count(pool, bed) == 66 for bed in beds), what="every bed's samples stored")
    with pool.connection() as conn:
        latest = {
            r["device_id"]: r["ts"]
            for r in conn.execute(
                "SELECT device_id, ts FROM telemetry.latest_samples WHERE device_id = ANY(%s)", (beds,)
            )
        }
    assert latest == {bed: start + timedelta(seconds=65) for bed in beds}


def test_values_the_gateway_would_not_forward_are_decided_as_before(pool, make_component, publisher, log_tap):
    """Ingest trusts the gateway's batches; a value the database refuses (here a heart rate no
    smallint holds, which the gateway never forwards) and a movement below the smallest `real`
    take the careful path: the first is dead-lettered with its reason, the second stored as 0.0,
    and the other messages of the same fetch are stored."""
    rejected = metric(REJECTED, topic="telemetry", reason="unparseable")
    good, refused, tiny = unique("bed"), unique("bed"), unique("bed")
    odd = series(base_time(), 3, seed=4)
    odd[1] = odd[1].model_copy(update={"occupied": True, "heart_rate": 70000})
    small = series(base_time(), 3, seed=5)
    small[2] = small[2].model_copy(update={"movement": 1e-50})
    # Stored before the consumer starts, so that they come in one fetch (one transaction).
    publisher.telemetry(message((good, "res", series(base_time(), 4))))
    publisher.telemetry(message((refused, "res", odd)))
    publisher.telemetry(message((tiny, "res", small)))
    make_component()
    wait_for(lambda: _count(pool, good) == 4 and _count(pool, tiny) == 3, what="the others stored")
    wait_for(lambda: metric(REJECTED, topic="telemetry", reason="unparseable") - rejected == 1,
             what="the refused message counted")
    assert _count(pool, refused) == 0
    assert [row[4] for row in stored_rows(pool, tiny)] == [small[0].movement, small[1].movement, 0.0]
    dead = log_tap.wait_messages(streams.DEAD, 1)
    assert dead[0].headers["Homecare-Subject"] == log_tap.subjects.telemetry(refused)
    assert "smallint" in dead[0].headers["Homecare-Reason"]
