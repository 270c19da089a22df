"""A consumer made stuck for real, for the console's and the browser's tests: its handler holds
what it gets until released, and its limit is a second."""

from __future__ import annotations

import threading

import pytest

from homecare.log import ConsumerSpec, streams
from tests.support import LogTap

LIMIT_S = 1.0


@pytest.fixture
def tap(nats_url, log_namespace):
    tap = LogTap(nats_url, log_namespace)
    yield tap
    tap.close()


class Blocking:
    """A handler that holds what it gets until released."""

    def __init__(self):
        self.release = threading.Event()
        self.handled: list[bytes] = []

    def __call__(self, batch) -> None:
        self.release.wait(60)
        self.handled.extend(d.data for d in batch)


def intake_spec(tap: LogTap) -> ConsumerSpec:
    return ConsumerSpec(durable="intake-under-test", stream=streams.EVENTS, title="Button presses",
                        filter_subject=tap.subjects.events_of("button"), fetch_wait_s=0.2, ack_wait_s=60,
                        stuck_after_s=LIMIT_S)
