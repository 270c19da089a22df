"""Dead letters made for real, for the console's tests: a consumer of the test's streams whose
handler raises until it is fixed gives up on what is published to it."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from homecare.log import Consumer, ConsumerSpec, streams
from tests.support import LogTap

from .conftest import PASSWORD


class Broken:
    """A handler that fails every message until it is fixed, then keeps what it gets."""

    def __init__(self):
        self.fixed = threading.Event()
        self.handled: list[bytes] = []

    def __call__(self, batch) -> None:
        if not self.fixed.is_set():
            raise ValueError("cannot handle this yet")
        self.handled.extend(d.data for d in batch)


@pytest.fixture
def tap(nats_url, log_namespace):
    tap = LogTap(nats_url, log_namespace)
    yield tap
    tap.close()


@pytest.fixture
def broken(tap):
    """A running consumer of button presses on the test's streams that fails until fixed."""
    handler = Broken()
    spec = ConsumerSpec(durable="presses-under-test", stream=streams.EVENTS, fetch_wait_s=0.2, max_deliveries=2,
                        ack_wait_s=5)
    consumer = Consumer(tap.log, spec, handler, monitor_s=0.5)
    consumer.start()
    yield handler
    consumer.stop()


def dead_letter(tap: LogTap, payload: bytes, device: str = "btn-1") -> tuple[int, str]:
    """Publish a press the broken consumer gives up on; its seq in the dead letters and its subject."""
    subject = tap.subjects.event("button.pressed", device)
    before = len(tap.messages(streams.DEAD))
    tap.publish(subject, payload)
    letters = tap.wait_messages(streams.DEAD, before + 1, timeout=20)
    assert letters[-1].data == payload
    return letters[-1].seq, subject


def token(client: TestClient, username: str) -> dict[str, str]:
    """A bearer token through the API's sign-in, as a script would get one."""
    answer = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def listed(client: TestClient, headers, **params) -> dict[int, dict]:
    answer = client.get("/api/v1/dead-letters", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return {row["seq"]: row for row in answer.json()}
