"""Test helpers for dispatch: residents, providers, users, internal messages, a command listener."""

from __future__ import annotations

import json
import queue
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from homecare.auth import Role, create_user, issue_token
from homecare.internal import DeviceAck, DeviceEvent, DeviceState, OpenRequest
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.residents import store as residents
from homecare.topics import DeviceChannel, all_devices_filter, parse_device_topic
from services.dispatch import queries
from services.dispatch.domain.matching import Location
from services.dispatch.store import new_id, providers
from tests.support import LogTap, wait_for

HOME = Location(31.2304, 121.4737)


def km_north(km: float) -> Location:
    """A point `km` kilometres north of HOME."""
    return Location(HOME.lat + km / 111.195, HOME.lon)


def new_resident(pool, location: Location = HOME) -> str:
    body = residents.NewResident(
        name=f"Resident {uuid.uuid4().hex[:6]}", address="1 Test Road", district="Huangpu",
        location=residents.Location(lat=location.lat, lon=location.lon),
    )
    with pool.connection() as conn:
        return residents.enrol(conn, body).id


def new_provider(pool, services=("meal",), km: float = 1.0, capacity: int = 2, name: str | None = None) -> dict:
    with pool.connection() as conn:
        return providers.insert(
            conn, new_id("p"), name or f"Carer {uuid.uuid4().hex[:4]}", list(services), km_north(km), capacity
        )


def token_for(pool, role: Role, provider_id: str | None = None) -> dict[str, str]:
    """Authorization header of a new account with that role."""
    with pool.connection() as conn:
        user = create_user(conn, f"{role.value}-{uuid.uuid4().hex[:8]}", "secret-password", role, provider_id)
        return {"Authorization": f"Bearer {issue_token(conn, user)}"}


def button_event(
    device_id: str, resident_id: str, service: str, type_: str = "button.pressed", event_id: str | None = None
) -> DeviceEvent:
    now = datetime.now(UTC)
    return DeviceEvent(
        device_id=device_id, device_kind="button", resident_id=resident_id, event_id=event_id or str(uuid.uuid4()),
        ts=now, type=type_, received_at=now, service=service,
    )


def press(pool, bus, resident_id: str, service: str = "meal", device_id: str | None = None) -> tuple[str, str]:
    """A press acknowledged to the button and then matched (offered, queued or escalated: the
    timer loop's step after the intake); returns (device, request id)."""
    device_id = device_id or f"btn-{uuid.uuid4().hex[:8]}"
    bus.press(button_event(device_id, resident_id, service))
    request_id = bus.command(device_id, "request.acknowledged")["request_id"]
    wait_for(lambda: {"offer.made", "queued", "escalated"} & set(kinds(get_request(pool, request_id))),
             what=f"request {request_id} matched")
    return device_id, request_id


def request_of(pool, resident_id: str, service: str | None = None) -> dict | None:
    """The resident's open request (of that service), with timeline."""
    with pool.connection() as conn:
        rows = [r for r in queries.open_requests_for(conn, resident_id) if service in (None, r["service"])]
        return queries.get_request(conn, rows[0]["id"]) if rows else None


def get_request(pool, request_id: str) -> dict:
    with pool.connection() as conn:
        return queries.get_request(conn, request_id)


def steps(request: dict) -> list[dict]:
    """The request's timeline without the delivery of its commands (`command.sent` and the like
    join it whenever the broker and the button get to them)."""
    return [e for e in request["timeline"] if not e["kind"].startswith("command.")]


def kinds(request: dict) -> list[str]:
    return [e["kind"] for e in steps(request)]


def escalation(request: dict) -> dict:
    """The request's `escalated` timeline entry (matching goes on after it: it is seldom the last)."""
    return next(e for e in request["timeline"] if e["kind"] == "escalated")


def pending_offer(request: dict) -> dict | None:
    return next((o for o in request["offers"] if o["status"] == "pending"), None)


class Bus:
    """A test client standing in for the gateway, telemetry and the buttons: puts their messages
    into the log, and collects the commands dispatch publishes to the devices' `commands` topics.

    A device that presses has connected: its first press is preceded by its `online` state, as
    the gateway would announce it (dispatch holds commands for a device that never connected)."""

    def __init__(self, broker_url: str, instance: str, tap: LogTap):
        self.tap = tap
        self.commands: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.online: set[str] = set()
        self.link = MqttLink(
            BrokerAddress.parse(broker_url), f"dispatch-test-{instance}", clean_session=True,
            subscriptions={all_devices_filter(DeviceChannel.COMMANDS): self._on_command},
        )

    def _on_command(self, client, message) -> None:
        self.commands.put((parse_device_topic(message.topic).device_id, json.loads(message.payload)))

    def start(self) -> Bus:
        self.link.start()
        assert self.link.wait_subscribed(10)
        return self

    def stop(self) -> None:
        self.link.stop()

    def send(self, subject: str, body) -> None:
        payload = body.dumps() if hasattr(body, "dumps") else json.dumps(body).encode()
        self.tap.publish(subject, payload)

    def connect(self, device_id: str, resident_id: str = "r-test", kind: str = "button", shard: str = "main") -> None:
        """The gateway announces the device online (once per device and test)."""
        if device_id in self.online:
            return
        self.online.add(device_id)
        self.send(self.tap.subjects.state(device_id), DeviceState(
            device_id=device_id, device_kind=kind, resident_id=resident_id, state="online",
            at=datetime.now(UTC), shard=shard,
        ))

    def press(self, event: DeviceEvent) -> DeviceEvent:
        self.connect(event.device_id, event.resident_id)
        self.send(self.tap.subjects.event(event.type, event.device_id), event)
        return event

    def open_request(self, message: OpenRequest) -> None:
        self.send(self.tap.subjects.request(message.source), message)

    def ack(self, device_id: str, command_id: str, at: datetime | None = None) -> None:
        """The device acknowledges a command, forwarded by the gateway."""
        at = at or datetime.now(UTC)
        self.send(self.tap.subjects.ack(device_id), DeviceAck(
            device_id=device_id, command_id=command_id, ts=at, received_at=at,
        ))

    def command(self, device_id: str, type_: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next command of that type for that device (others are kept in `seen`)."""
        for seen in self.seen:
            if seen[0] == device_id and seen[1]["type"] == type_:
                self.seen.remove(seen)
                return seen[1]
        deadline = datetime.now(UTC).timestamp() + timeout
        while (left := deadline - datetime.now(UTC).timestamp()) > 0:
            try:
                got = self.commands.get(timeout=left)
            except queue.Empty:
                break
            if got[0] == device_id and got[1]["type"] == type_:
                return got[1]
            self.seen.append(got)
        raise AssertionError(f"no {type_} command for {device_id} within {timeout}s")

    def commands_for(self, device_id: str, wait: float = 0.5) -> list[dict[str, Any]]:
        """Every command seen for a device so far (after a short wait), in arrival order."""
        try:
            while True:
                self.seen.append(self.commands.get(timeout=wait))
        except queue.Empty:
            pass
        return [command for device, command in self.seen if device == device_id]


def api_client(pool, router) -> TestClient:
    from homecare.api.app import build_app

    return TestClient(build_app("dispatch-tests", pool, routers=[router]))
