"""Test helpers for dispatch: residents, providers, users, internal messages, a command listener."""

from __future__ import annotations

import json
import queue
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from homecare.auth import Role, create_user, issue_token
from homecare.internal import CommandOrder, CommandState, DeviceEvent, OpenRequest
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.residents import store as residents
from homecare.topics import Internal
from services.dispatch import queries
from services.dispatch.domain.matching import Location
from services.dispatch.store import new_id, providers
from tests.support import LogTap

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


def request_of(pool, resident_id: str, service: str | None = None) -> dict | None:
    """The resident's open request (of that service), with timeline."""
    with pool.connection() as conn:
        rows = [r for r in queries.open_requests_for(conn, resident_id) if service in (None, r["service"])]
        return queries.get_request(conn, rows[0]["id"]) if rows else None


def get_request(pool, request_id: str) -> dict:
    with pool.connection() as conn:
        return queries.get_request(conn, request_id)


def kinds(request: dict) -> list[str]:
    return [e["kind"] for e in request["timeline"]]


def pending_offer(request: dict) -> dict | None:
    return next((o for o in request["offers"] if o["status"] == "pending"), None)


class Bus:
    """A test client standing in for the gateway and telemetry: puts their messages into the log,
    and collects the command orders dispatch sends to the gateway over the broker."""

    def __init__(self, broker_url: str, instance: str, tap: LogTap):
        self.tap = tap
        self.orders: queue.Queue[CommandOrder] = queue.Queue()
        self.seen: list[CommandOrder] = []
        self.link = MqttLink(
            BrokerAddress.parse(broker_url), f"dispatch-test-{instance}", clean_session=True,
            subscriptions={Internal.COMMANDS: self._on_command},
        )

    def _on_command(self, client, message) -> None:
        self.orders.put(CommandOrder.model_validate_json(message.payload))

    def start(self) -> Bus:
        self.link.start()
        assert self.link.wait_subscribed(10)
        return self

    def stop(self) -> None:
        self.link.stop()

    def send(self, subject: str, body) -> None:
        payload = body.dumps() if hasattr(body, "dumps") else json.dumps(body).encode()
        self.tap.publish(subject, payload)

    def press(self, event: DeviceEvent) -> DeviceEvent:
        self.send(self.tap.subjects.event(event.type, event.device_id), event)
        return event

    def open_request(self, message: OpenRequest) -> None:
        self.send(self.tap.subjects.request(message.source), message)

    def command_state(self, state: CommandState) -> None:
        self.send(self.tap.subjects.ack(state.device_id), state)

    def command(self, device_id: str, type_: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next command of that type for that device (others are kept in `seen`)."""
        for order in self.seen:
            if order.device_id == device_id and order.command["type"] == type_:
                self.seen.remove(order)
                return order.command
        deadline = datetime.now(UTC).timestamp() + timeout
        while (left := deadline - datetime.now(UTC).timestamp()) > 0:
            try:
                order = self.orders.get(timeout=left)
            except queue.Empty:
                break
            if order.device_id == device_id and order.command["type"] == type_:
                return order.command
            self.seen.append(order)
        raise AssertionError(f"no {type_} command for {device_id} within {timeout}s")

    def commands_for(self, device_id: str, wait: float = 0.5) -> list[dict[str, Any]]:
        """Every command seen for a device so far (after a short wait), in arrival order."""
        try:
            while True:
                self.seen.append(self.orders.get(timeout=wait))
        except queue.Empty:
            pass
        return [o.command for o in self.seen if o.device_id == device_id]


def api_client(pool, router) -> TestClient:
    from homecare.api.app import build_app

    return TestClient(build_app("dispatch-tests", pool, routers=[router]))
