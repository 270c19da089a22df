"""Command orders from services (MQTT, `Internal.COMMANDS`) reach devices; acks and deadlines
are recorded and announced as CommandState in the log's ACKS stream (`<ns>.acks.<device>`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from homecare.contract import DeviceKind
from homecare.internal import CommandOrder
from homecare.log import streams
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import Internal
from tests.support import FakeDevice, unique, wait_for

from .conftest import counter, device_row


@pytest.fixture
def orders(broker_url: str) -> Iterator[MqttLink]:
    link = MqttLink(BrokerAddress.parse(broker_url), unique("orders"), clean_session=True)
    link.start()
    yield link
    link.stop()


def _order(link: MqttLink, device_id: str, command: dict, deadline_s: int = 600) -> None:
    body = CommandOrder(device_id=device_id, command=command, deadline_s=deadline_s)
    link.publish(Internal.COMMANDS, body.dumps()).wait_for_publish(10)


def _command(pool, command_id: str) -> dict | None:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT * FROM gateway.commands WHERE command_id = %s", (command_id,)
        ).fetchone()


def _state_of(command_id: str):
    return lambda subject, payload: payload.get("command_id") == command_id


class _CommandStates:
    """The CommandStates the gateway stores in the ACKS stream, each checked to be on the
    subject of its command's device."""

    def __init__(self, tap, listener):
        self._tap, self._listener = tap, listener

    def next(self, match, timeout: float = 10.0) -> tuple[str, dict]:
        subject, payload = self._listener.next(match, timeout)
        assert subject == self._tap.subjects.ack(payload["device_id"])
        return subject, payload


@pytest.fixture
def states(log_tap, log_listener) -> _CommandStates:
    return _CommandStates(log_tap, log_listener(log_tap.subjects.of_stream("acks")))


def test_an_order_reaches_the_device_and_its_ack_is_recorded(
    gateway, device_factory, states, log_tap, orders, pool
):
    button = device_factory(DeviceKind.BUTTON)
    command_id = unique("c")
    _order(orders, button.device_id, {
        "command_id": command_id, "type": "request.assigned", "request_id": "r-1029",
        "service": "meal", "provider": "Li Mei", "eta_minutes": 12, "internal_note": "dropped",
    })

    command = button.next_command()
    assert command == {
        "command_id": command_id, "type": "request.assigned", "request_id": "r-1029",
        "service": "meal", "provider": "Li Mei", "eta_minutes": 12,
    }
    _, sent = states.next(_state_of(command_id))
    assert (sent["state"], sent["device_id"]) == ("sent", button.device_id)
    row = _command(pool, command_id)
    assert row["state"] == "sent" and row["sent_at"] is not None and row["acked_at"] is None

    button.ack(command_id)
    _, acked = states.next(_state_of(command_id))
    assert acked["state"] == "acknowledged"
    row = _command(pool, command_id)
    assert row["state"] == "acknowledged" and row["acked_at"] is not None
    wait_for(lambda: _command(pool, command_id)["announced"] == "acknowledged", what="announced")
    stored = log_tap.payloads(streams.ACKS, log_tap.subjects.ack(button.device_id))
    assert [(p["command_id"], p["state"]) for p in stored] == [(command_id, "sent"), (command_id, "acknowledged")]


def test_a_redelivered_order_is_not_sent_twice(gateway, device_factory, states, orders):
    button = device_factory(DeviceKind.BUTTON)
    command = {"command_id": unique("c"), "type": "request.acknowledged", "request_id": "r-7",
               "service": "bathing"}
    _order(orders, button.device_id, command)
    assert button.next_command()["command_id"] == command["command_id"]
    assert states.next(_state_of(command["command_id"]))[1]["state"] == "sent"

    _order(orders, button.device_id, command)
    # the gateway says again where the command stands, and does not deliver it again
    assert states.next(_state_of(command["command_id"]))[1]["state"] == "sent"
    assert button.commands.empty()


def test_an_acknowledged_config_changes_the_report_interval(
    gateway, device_factory, orders, states, pool
):
    bed = device_factory(DeviceKind.BED)
    command_id = unique("c")
    _order(orders, bed.device_id, {"command_id": command_id, "type": "config", "report_interval_s": 30})
    assert bed.next_command() == {"command_id": command_id, "type": "config", "report_interval_s": 30}
    bed.ack(command_id)
    states.next(lambda s, p: p.get("command_id") == command_id and p["state"] == "acknowledged")
    assert device_row(pool, bed.device_id)["report_interval_s"] == 30


def test_an_unacknowledged_command_expires(
    gateway, device_factory, orders, states, pool, caplog
):
    button = device_factory(DeviceKind.BUTTON)
    command_id = unique("c")
    with caplog.at_level(logging.WARNING, logger="gateway.commands"):
        _order(orders, button.device_id, {
            "command_id": command_id, "type": "request.completed", "request_id": "r-9",
            "service": "escort",
        }, deadline_s=1)
        states.next(lambda s, p: p.get("command_id") == command_id and p["state"] == "sent")
        _, expired = states.next(
            lambda s, p: p.get("command_id") == command_id and p["state"] == "expired"
        )
    assert expired["device_id"] == button.device_id
    assert _command(pool, command_id)["state"] == "expired"
    assert any(command_id in r.getMessage() and "expired" in r.getMessage() for r in caplog.records)


def test_a_malformed_order_is_dropped(gateway, device_factory, orders, caplog):
    button = device_factory(DeviceKind.BUTTON)
    with caplog.at_level(logging.ERROR, logger="gateway.commands"):
        _order(orders, button.device_id, {"command_id": unique("c"), "type": "request.assigned"})
        wait_for(lambda: any("malformed command order" in r.getMessage() for r in caplog.records))
    # and the gateway goes on: the next good order is delivered
    good = {"command_id": unique("c"), "type": "request.cancelled", "request_id": "r-3",
            "service": "meal", "reason": "resident cancelled"}
    _order(orders, button.device_id, good)
    assert button.next_command() == good


def test_a_command_to_a_device_that_never_connected_waits_for_its_first_connection(
    gateway, device_factory, states, orders, pool
):
    button = device_factory(DeviceKind.BUTTON, connect=False)  # provisioned, never connected
    held = counter("homecare_gateway_commands_held_total")
    first, second = unique("c"), unique("c")
    for command_id in (first, second):
        _order(orders, button.device_id, {"command_id": command_id, "type": "request.acknowledged",
                                          "request_id": "r-1", "service": "meal"})
    wait_for(lambda: all((r := _command(pool, c)) and r["held"] for c in (first, second)), what="held")
    assert counter("homecare_gateway_commands_held_total") == held + 2
    assert _command(pool, first)["state"] == "queued"
    _order(orders, button.device_id, {"command_id": first, "type": "request.acknowledged",
                                      "request_id": "r-1", "service": "meal"})  # redelivered order
    time.sleep(0.3)
    assert _command(pool, first)["held"]

    button.connect()  # subscribes, then says it is online
    delivered = {button.next_command()["command_id"], button.next_command()["command_id"]}
    assert delivered == {first, second}
    announced = set()
    while announced != {first, second}:  # in either order
        _, state = states.next(lambda s, p: p.get("command_id") in (first, second) and p["state"] == "sent")
        announced.add(state["command_id"])
    for command_id in (first, second):
        row = _command(pool, command_id)
        assert row["state"] == "sent" and not row["held"]
    button.ack(first)
    states.next(lambda s, p: p.get("command_id") == first and p["state"] == "acknowledged")
    assert button.commands.empty()  # each was delivered once


def test_a_command_to_a_device_seen_before_goes_to_its_session_while_it_is_offline(
    gateway, broker_url, resident_id, orders, pool
):
    with pool.connection() as conn:
        device, secret = gateway.admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
    button = FakeDevice(broker_url, device.id, secret).connect()
    wait_for(lambda: device_row(pool, device.id)["state"] == "online", what="online")
    button.close()  # a clean disconnect: its persistent session stays at the broker
    command_id = unique("c")
    _order(orders, device.id, {"command_id": command_id, "type": "request.completed",
                               "request_id": "r-2", "service": "meal"})
    wait_for(lambda: (r := _command(pool, command_id)) and r["state"] == "sent", what="sent into the session")
    assert not _command(pool, command_id)["held"]
    back = FakeDevice(broker_url, device.id, secret)
    try:
        back.link.start()  # reconnects to its session: the command is waiting there
        assert back.next_command()["command_id"] == command_id
    finally:
        back.close()
