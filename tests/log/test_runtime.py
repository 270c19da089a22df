"""The consumer runtime on a real NATS server: acknowledgement after the effect, retries,
dead letters, transient failures, replicas sharing a durable consumer, and readiness."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from nats.js.errors import APIError

from homecare.log import Consumer, ConsumerSpec, Log, streams


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def spec(**overrides) -> ConsumerSpec:
    values = dict(durable="test", stream=streams.EVENTS, batch=50, fetch_wait_s=0.2, max_deliveries=3,
                  ack_wait_s=5)
    values.update(overrides)
    return ConsumerSpec(**values)


def publish(log: Log, n: int, prefix: str = "m") -> list[bytes]:
    payloads = [f"{prefix}{i}".encode() for i in range(n)]
    for p in payloads:
        log.publish_wait(log.subjects.event("button.pressed", "dev-1"), p)
    return payloads


def test_every_message_is_handled_and_acknowledged_once(log_):
    payloads = publish(log_, 120)
    seen: list[bytes] = []
    consumer = Consumer(log_, spec(), lambda batch: seen.extend(d.data for d in batch), monitor_s=0.2)
    consumer.start()
    try:
        wait_for(lambda: len(seen) >= 120, what="all messages")
        wait_for(lambda: consumer.handled == 120, what="all acknowledged")
        time.sleep(0.5)
        info = log_.call(log_.js.consumer_info(log_.stream(streams.EVENTS), consumer.name))
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert sorted(seen) == sorted(payloads)
        assert seen == payloads  # one worker: in stream order
    finally:
        consumer.stop()


def test_a_poison_message_is_dead_lettered_with_its_reason_and_the_rest_go_through(log_):
    publish(log_, 10)
    log_.publish_wait(log_.subjects.event("button.pressed", "dev-2"), b"poison")
    publish(log_, 10, "n")
    handled: list[bytes] = []
    attempts: list[int] = []

    def handler(batch):
        for d in batch:
            if d.data == b"poison":
                attempts.append(d.deliveries)
                raise ValueError("cannot parse this")
        handled.extend(d.data for d in batch)

    consumer = Consumer(log_, spec(max_deliveries=3), handler)
    consumer.start()
    try:
        wait_for(lambda: len(handled) == 20, what="the good messages")
        wait_for(lambda: len(attempts) == 3, timeout=20, what="three deliveries of the poison")
        dead = log_.stream(streams.DEAD)
        wait_for(lambda: log_.call(log_.js.stream_info(dead)).state.messages == 1, what="a dead letter")
        msg = log_.call(log_.js.get_msg(dead, seq=1))
        assert msg.data == b"poison"
        assert msg.headers["Homecare-Reason"] == "ValueError: cannot parse this"
        assert msg.headers["Homecare-Subject"] == log_.subjects.event("button.pressed", "dev-2")
        assert msg.headers["Homecare-Deliveries"] == "3"
        wait_for(lambda: consumer.handled == 21, what="the poison acknowledged too")
    finally:
        consumer.stop()
    assert attempts == [1, 1, 2, 3]  # once in its batch, then alone on each delivery


def test_in_lanes_a_slow_devices_messages_hold_back_only_their_own_lane(log_):
    # "stuck" and "other" fall in different lanes of four (the lane is the device id's crc32).
    for n in range(20):
        log_.publish_wait(log_.subjects.event("button.pressed", "stuck"), f"stuck:{n}".encode())
    log_.publish_wait(log_.subjects.event("button.pressed", "other"), b"other:0")
    handled: list[bytes] = []
    other_done = threading.Event()

    def handler(batch):
        assert len(batch) == 1  # in lanes, one message at a time
        data = batch[0].data
        if data == b"stuck:0":  # the stuck button's first press waits for the other button's
            assert other_done.wait(10), "the other button's press waited behind the stuck one"
        handled.append(data)
        if data == b"other:0":
            other_done.set()

    consumer = Consumer(log_, spec(batch=50, lanes=4), handler)
    consumer.start()
    try:
        wait_for(lambda: consumer.handled == 21, what="every message handled and acknowledged")
    finally:
        consumer.stop()
    assert handled.index(b"other:0") == 0
    assert [m for m in handled if m.startswith(b"stuck")] == [f"stuck:{n}".encode() for n in range(20)]
    info = log_.call(log_.js.consumer_info(log_.stream(streams.EVENTS), consumer.name))
    assert info.num_ack_pending == 0 and info.num_pending == 0


def test_in_lanes_a_poison_message_is_dead_lettered_and_its_devices_next_message_goes_through(log_):
    log_.publish_wait(log_.subjects.event("button.pressed", "dev-a"), b"poison")
    log_.publish_wait(log_.subjects.event("button.pressed", "dev-a"), b"after")
    publish(log_, 5)
    handled: list[bytes] = []
    attempts: list[int] = []

    def handler(batch):
        (d,) = batch
        if d.data == b"poison":
            attempts.append(d.deliveries)
            raise ValueError("cannot parse this")
        handled.append(d.data)

    consumer = Consumer(log_, spec(max_deliveries=2, lanes=2), handler)
    consumer.start()
    try:
        wait_for(lambda: consumer.handled == 7, timeout=20, what="every message settled")
    finally:
        consumer.stop()
    assert attempts == [1, 2]
    assert sorted(handled) == sorted([b"after"] + [f"m{i}".encode() for i in range(5)])
    assert log_.call(log_.js.stream_info(log_.stream(streams.DEAD))).state.messages == 1


def test_a_message_to_an_idle_consumer_is_handed_over_without_waiting_for_a_full_batch(log_):
    # A fetch that waited for its batch to fill would hold a lone message until 49 more came or
    # the pull request's wait was over (here 6 s): a press on a quiet night would wait for
    # presses that are not coming.
    handled_at: list[float] = []
    consumer = Consumer(log_, spec(batch=50, fetch_wait_s=6.0),
                        lambda batch: handled_at.extend(time.monotonic() for _ in batch))
    consumer.start()
    try:
        time.sleep(0.5)  # the consumer's pull request is open and idle
        sent_at = time.monotonic()
        publish(log_, 1)
        wait_for(lambda: handled_at, timeout=15, what="the message")
        assert handled_at[0] - sent_at < 3.0, "handed over only when the pull request's wait was over"
        wait_for(lambda: consumer.handled == 1, what="its acknowledgement")
    finally:
        consumer.stop()
    assert len(handled_at) == 1


@pytest.mark.parametrize("lanes", [0, 4])
def test_what_a_stopped_replica_pulled_and_did_not_handle_goes_to_another_at_once(nats_url, log_, lanes):
    # ack_wait 60 s: a message a stopped replica kept without handing it back would reach the
    # other replica only after the test's wait.
    publish(log_, 200)
    first: list[bytes] = []
    release = threading.Event()

    def slow(batch):
        first.extend(d.data for d in batch)
        release.wait(10)

    a = Consumer(log_, spec(batch=10, ack_wait_s=60, lanes=lanes), slow)
    a.start()
    wait_for(lambda: first, what="replica a's first batch")
    stopping = threading.Thread(target=a.stop)
    stopping.start()
    release.set()
    stopping.join(20)
    second: list[bytes] = []
    other = Log(nats_url, "test-b", log_.namespace)
    other.start()
    b = Consumer(other, spec(batch=50, ack_wait_s=60, lanes=lanes), lambda batch: second.extend(d.data for d in batch))
    b.start()
    try:
        wait_for(lambda: len(set(first) | set(second)) == 200, timeout=15, what="every message handled")
    finally:
        b.stop()
        other.stop()


def test_a_transient_failure_is_waited_out_without_counting_against_the_message(log_):
    publish(log_, 5)
    failures = [2]
    handled: list[bytes] = []

    def handler(batch):
        if failures[0]:
            failures[0] -= 1
            raise psycopg.OperationalError("the database is restarting")
        handled.extend(d.data for d in batch)

    consumer = Consumer(log_, spec(max_deliveries=1), handler)
    consumer.start()
    try:
        wait_for(lambda: len(handled) == 5, what="the batch after the outage")
        time.sleep(0.5)
        assert log_.call(log_.js.stream_info(log_.stream(streams.DEAD))).state.messages == 0
        assert len(handled) == 5
    finally:
        consumer.stop()


def test_replicas_share_one_durable_consumer_and_handle_each_message_once(nats_url, log_):
    payloads = publish(log_, 300)
    other = Log(nats_url, "test-2", log_.namespace)
    other.start()
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    lock = threading.Lock()

    def handler_of(name):
        def handle(batch):
            time.sleep(0.01)
            with lock:
                seen[name].extend(d.data for d in batch)
        return handle

    a = Consumer(log_, spec(batch=10), handler_of("a"))
    b = Consumer(other, spec(batch=10), handler_of("b"))
    a.start()
    b.start()
    try:
        wait_for(lambda: len(seen["a"]) + len(seen["b"]) >= 300, what="all messages")
        time.sleep(0.5)
        assert sorted(seen["a"] + seen["b"]) == sorted(payloads)  # none twice, none lost
        assert seen["a"] and seen["b"]
    finally:
        a.stop()
        b.stop()
        other.stop()


def test_readiness_fails_while_the_oldest_message_waits_too_long(log_):
    publish(log_, 1)
    release = threading.Event()

    def handler(batch):
        release.wait(20)

    consumer = Consumer(log_, spec(stuck_after_s=0.5, ack_wait_s=30), handler, monitor_s=0.2)
    consumer.start()
    try:
        wait_for(lambda: not consumer.ready(), what="not ready")
        assert consumer.oldest_unacked_s > 0.5
        release.set()
        wait_for(consumer.ready, what="ready again")
        assert consumer.handled == 1
    finally:
        release.set()
        consumer.stop()


def test_a_log_configured_for_more_replicas_than_a_single_node_has_fails_at_once_saying_why(nats_url):
    # Not a cluster still forming (that is waited for: tests/simulator/test_bench_city.py) but a
    # misconfiguration: the component must not wait for what will never come.
    log = Log(nats_url, "test-peers", f"T{uuid.uuid4().hex[:8]}", replicas=3)
    started = time.monotonic()
    try:
        with pytest.raises(APIError, match="replicas > 1 not supported"):
            log.start(timeout=10.0)
        assert time.monotonic() - started < 5.0
    finally:
        log.stop()
