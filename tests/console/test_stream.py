"""The board's server-sent events: a snapshot, then changes as NOTIFYs arrive."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import psycopg
import pytest

from homecare.api.deps import SESSION_COOKIE

from .conftest import csrf_in
from .dispatching import cancel_request, new_resident, open_request

CHANNEL = "dispatch_request_changed"


def events(response) -> Iterator[tuple[str, dict | None]]:
    """(event, data) as they arrive; a heartbeat comment comes as ("ping", None)."""
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "ping", None
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def wait_event(stream, wanted: str, timeout: float = 10.0, match=lambda data: True) -> dict:
    """The next `wanted` event whose data matches; heartbeats keep the deadline checked."""
    deadline = time.monotonic() + timeout
    for name, data in stream:
        if name == wanted and match(data):
            return data
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {wanted} event within {timeout}s")


def notify(database_url: str, request_id: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, request_id))


@pytest.fixture
def resident(pool) -> tuple[str, str]:
    return new_resident(pool, "Stream Person")


def test_stream_starts_with_a_snapshot_of_the_board(pool, signed_in, resident):
    request = open_request(pool, resident[0], "meal")

    with signed_in.stream("GET", "/events/requests") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        snapshot = wait_event(events(response), "snapshot")

    rows = {r["id"]: r for r in snapshot["active"]}
    assert request in rows
    assert rows[request]["resident_name"] == "Stream Person"
    assert f'data-id="{request}"' in rows[request]["html"]
    assert snapshot["counts"][rows[request]["status"]] >= 1
    assert snapshot["server_time"].endswith("Z")


def test_a_notify_delivers_the_changed_request(pool, database_url, signed_in, resident):
    request = open_request(pool, resident[0], "meal")

    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        notify(database_url, request)
        changes = wait_event(stream, "changes", match=lambda d: any(r["id"] == request for r in d["rows"]))

    row = next(r for r in changes["rows"] if r["id"] == request)
    assert row["section"] == "active"
    assert row["resident_name"] == "Stream Person"


def test_a_change_through_dispatch_reaches_the_stream(pool, signed_in, resident):
    request = open_request(pool, resident[0], "bathing")

    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        cancel_request(pool, request)  # dispatch NOTIFYs inside its transaction
        changes = wait_event(
            stream, "changes",
            match=lambda d: any(r["id"] == request and r["status"] == "cancelled" for r in d["rows"]),
        )

    row = next(r for r in changes["rows"] if r["id"] == request)
    assert row["section"] == "recent"
    assert "pill-cancelled" in row["html"]
    assert changes["counts"]["cancelled"] >= 1


def test_an_unknown_id_is_reported_removed(database_url, signed_in):
    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        notify(database_url, "r-does-not-exist")
        changes = wait_event(stream, "changes")

    assert changes["removed"] == ["r-does-not-exist"]
    assert changes["rows"] == []


def test_heartbeats_keep_the_stream_alive(signed_in):
    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        assert wait_event(stream, "ping", timeout=5) is None


def test_the_stream_ends_when_the_session_is_revoked(signed_in):
    token = csrf_in(signed_in.get("/").text)
    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        assert signed_in.cookies.get(SESSION_COOKIE)
        # Sign out from "another tab" of the same session.
        assert signed_in.post("/logout", data={"csrf_token": token}).status_code == 303
        assert wait_event(stream, "signed-out")["reason"]


def test_the_stream_needs_a_session_or_token(client):
    assert client.get("/events/requests").status_code == 401


def test_a_bearer_token_opens_the_stream_too(client, dispatcher):
    from .conftest import PASSWORD

    token = client.post("/api/v1/auth/token",
                        data={"username": dispatcher, "password": PASSWORD}).json()["access_token"]

    with client.stream("GET", "/events/requests",
                       headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200
        assert "active" in wait_event(events(response), "snapshot")
