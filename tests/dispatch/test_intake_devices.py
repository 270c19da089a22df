"""Intake handles one fetched batch's devices side by side and each device's messages in order:
a stuck button's flood of presses delays only that button."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from homecare.log import Delivery
from services.dispatch.workers.consumer import Intake


def delivery(device: str, n: int) -> Delivery:
    return Delivery(subject=f"hc.events.button.pressed.{device}", data=f"{device}:{n}".encode(), headers={},
                    deliveries=1, stream_seq=n, stored_at=datetime.now(UTC), msg=None)


class Recording(Intake):
    """The real batch logic, with `handle` recording instead of touching a database."""

    def __init__(self, workers: int):
        super().__init__(pool=None, ctx=None, workers=workers)
        self.handled: list[bytes] = []
        self.lock = threading.Lock()
        self.other_done = threading.Event()

    def handle(self, message: Delivery) -> str:
        if message.data == b"stuck:0":  # the stuck button's first press waits for the other button
            assert self.other_done.wait(5), "the other button's press waited behind the stuck one"
        with self.lock:
            self.handled.append(message.data)
        if message.data.startswith(b"other"):
            self.other_done.set()
        return "created"


def test_a_stuck_buttons_presses_do_not_hold_back_another_buttons_press():
    intake = Recording(workers=4)
    batch = [delivery("stuck", n) for n in range(20)] + [delivery("other", 0)]
    try:
        intake(batch)
    finally:
        intake.close()
    stuck = [m for m in intake.handled if m.startswith(b"stuck")]
    assert stuck == [f"stuck:{n}".encode() for n in range(20)]  # in order
    assert intake.handled.index(b"other:0") == 0  # first, while the stuck button's waited


def test_with_one_worker_the_same_batch_is_handled_in_order_one_device_after_another():
    intake = Recording(workers=1)
    intake.other_done.set()  # nothing to wait for: there is no second thread
    batch = [delivery("a", 0), delivery("b", 0), delivery("a", 1)]
    try:
        intake(batch)
    finally:
        intake.close()
    assert intake.handled == [b"a:0", b"a:1", b"b:0"]


def test_a_failure_of_one_device_is_raised_after_the_others_are_done():
    class Failing(Recording):
        def handle(self, message: Delivery) -> str:
            if message.data == b"bad:0":
                raise ValueError("this one")
            return super().handle(message)

    intake = Failing(workers=2)
    intake.other_done.set()
    try:
        with pytest.raises(ValueError, match="this one"):
            intake([delivery("bad", 0), delivery("good", 0), delivery("good", 1)])
    finally:
        intake.close()
    assert intake.handled == [b"good:0", b"good:1"]
