"""Acknowledgement after the disk: a handler that committed without waiting for the disk returns
a Durable, and the runtime acknowledges the message only once it says the effect is on disk;
an effect lost before that (the database restarted) gets the message handled again."""

from __future__ import annotations

import threading
import time

from homecare.errors import EffectLost
from homecare.log import Consumer, streams

from .test_runtime import spec, wait_for


class Gate:
    """A Durable that a test opens: durable() is false until then."""

    def __init__(self, lost: bool = False):
        self.open = threading.Event()
        self.lost = lost
        self.asked = 0

    def durable(self) -> bool:
        self.asked += 1
        if self.lost and self.open.is_set():
            raise EffectLost("the database restarted")
        return self.open.is_set()


def _ack_pending(log_, consumer) -> int:
    return log_.call(log_.js.consumer_info(log_.stream(streams.EVENTS), consumer.name)).num_ack_pending


def test_a_message_is_acknowledged_only_once_its_effect_is_on_disk(log_):
    gate = Gate()
    handled: list[bytes] = []

    def handler(batch):
        handled.extend(d.data for d in batch)
        return gate

    log_.publish_wait(log_.subjects.event("button.pressed", "dev-1"), b"press")
    consumer = Consumer(log_, spec(lanes=2, ack_wait_s=30), handler)
    consumer.start()
    try:
        wait_for(lambda: handled == [b"press"], what="the press handled")
        wait_for(lambda: gate.asked >= 3, what="the runtime asking whether it is on disk")
        time.sleep(0.3)
        assert consumer.handled == 0 and _ack_pending(log_, consumer) == 1  # committed, not yet on disk
        gate.open.set()
        wait_for(lambda: consumer.handled == 1, what="the acknowledgement once on disk")
        wait_for(lambda: _ack_pending(log_, consumer) == 0, what="the server to see it")
        assert handled == [b"press"]  # handled once
    finally:
        consumer.stop()


def test_a_message_whose_effect_was_lost_is_handled_again(log_):
    gates = [Gate(lost=True), Gate()]
    deliveries: list[int] = []

    def handler(batch):
        deliveries.extend(d.deliveries for d in batch)
        return gates[len(deliveries) - 1]

    log_.publish_wait(log_.subjects.event("button.pressed", "dev-1"), b"press")
    consumer = Consumer(log_, spec(lanes=2, ack_wait_s=30), handler)
    consumer.start()
    try:
        wait_for(lambda: deliveries == [1], what="the first handling")
        gates[0].open.set()  # the database "restarted" before the commit reached its disk
        wait_for(lambda: deliveries == [1, 2], what="the message handled again")
        gates[1].open.set()
        wait_for(lambda: consumer.handled == 1, what="the acknowledgement of the second handling")
    finally:
        consumer.stop()


def test_stopping_waits_a_little_for_the_disk_then_leaves_the_rest_to_redelivery(log_):
    gate = Gate()
    log_.publish_wait(log_.subjects.event("button.pressed", "dev-1"), b"press")
    handled: list[bytes] = []
    consumer = Consumer(log_, spec(lanes=1, ack_wait_s=2), lambda batch: handled.extend(d.data for d in batch) or gate)
    consumer.start()
    wait_for(lambda: handled == [b"press"], what="the press handled")
    consumer.stop(timeout=10)  # gives up on the gate after a few seconds
    assert consumer.handled == 0
    again: list[int] = []
    other = Consumer(log_, spec(lanes=1, ack_wait_s=2), lambda batch: again.extend(d.deliveries for d in batch))
    other.start()
    try:
        wait_for(lambda: again == [2], timeout=20, what="the redelivery to the next replica")
    finally:
        other.stop()


def test_a_handler_returning_something_else_is_done_at_once(log_):
    log_.publish_wait(log_.subjects.event("button.pressed", "dev-1"), b"press")
    consumer = Consumer(log_, spec(lanes=1), lambda batch: len(batch))  # returns a count, by the way
    consumer.start()
    try:
        wait_for(lambda: consumer.handled == 1, what="the acknowledgement")
    finally:
        consumer.stop()
