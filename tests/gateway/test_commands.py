"""Commands on the real path, gateway and dispatch running on the broker, the log and the database:
dispatch publishes each command straight to the device's `commands` topic, holds it while the
device never connected, and records the device's ack, which the gateway forwards into the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from homecare.contract import DeviceKind, Service, format_ts
from homecare.internal import DeviceEvent
from homecare.settings import Settings
from homecare.topics import DeviceChannel, device_topic
from services.dispatch import queries
from services.dispatch.bootstrap import DispatchComponent
from services.dispatch.bootstrap import build as build_dispatch
from services.dispatch.settings import DispatchSettings
from services.dispatch.store import outbox
from services.dispatch.usecases.intake import phoned
from tests.support import FakeDevice, unique, wait_for

from .conftest import device_row


@pytest.fixture
def dispatch(pool, broker_url: str, instance: str, gateway) -> Iterator[DispatchComponent]:
    component = build_dispatch(
        Settings(mqtt_url=broker_url, instance=instance), pool,
        DispatchSettings(timer_interval_s=0.2, outbox_poll_s=0.5, puback_timeout_s=5),
    )
    component.start()
    yield component
    component.stop()


def _commands(pool, device_id: str) -> list[dict]:
    with pool.connection() as conn:
        return outbox.for_device(conn, device_id)


def _request(pool, request_id: str) -> dict:
    with pool.connection() as conn:
        return queries.get_request(conn, request_id)


def _phone(pool, dispatch: DispatchComponent, resident_id: str) -> str:
    """A dispatcher opens a request for the resident: dispatch tells the resident's button."""
    with pool.connection() as conn, conn.transaction():
        return phoned(conn, dispatch.ctx, resident_id, Service.MEAL, None, "dispatcher:test").request_id


def test_a_press_lights_the_button_and_its_ack_is_recorded(gateway, dispatch, device_factory, pool):
    button = device_factory(DeviceKind.BUTTON)
    button.press("meal")

    command = button.next_command()  # straight from dispatch, on the device's own topic
    assert command["type"] == "request.acknowledged" and command["service"] == "meal"
    button.ack(command["command_id"])

    def acknowledged():
        rows = [r for r in _commands(pool, button.device_id) if r["command_id"] == command["command_id"]]
        return rows[0] if rows and rows[0]["state"] == "acknowledged" else None

    row = wait_for(acknowledged, what="the device's ack to reach dispatch")
    assert row["sent_at"] is not None and row["acked_at"] is not None and not row["held"]
    request = _request(pool, command["request_id"])
    assert request["ack_shown_at"] is not None
    delivered = [(e["kind"], e["actor"]) for e in request["timeline"] if e["kind"].startswith("command.")]
    assert delivered == [("command.sent", "dispatch"), ("command.acknowledged", f"device:{button.device_id}")]


def test_an_ack_of_a_command_the_device_was_not_sent_is_refused_with_a_reason(gateway, dispatch, device_factory):
    button = device_factory(DeviceKind.BUTTON)
    button.ack("c-never-sent")
    error = button.next_error()
    assert error["topic"] == device_topic(button.device_id, DeviceChannel.ACKS), error
    assert error["reason"] == f"command_id: 'c-never-sent' is not a command sent to {button.device_id}"


def test_a_command_to_a_device_that_never_connected_waits_for_its_first_connection(
    gateway, dispatch, device_factory, pool, resident_id
):
    button = device_factory(DeviceKind.BUTTON, connect=False)  # provisioned, never connected
    request_id = _phone(pool, dispatch, resident_id)
    wait_for(lambda: (rows := _commands(pool, button.device_id)) and rows[0]["held"], what="held")
    dispatch.publisher.drain()  # a round of the publisher: the held command stays
    [row] = _commands(pool, button.device_id)
    assert (row["state"], row["held"], row["sent_at"]) == ("queued", True, None)

    button.connect()  # subscribes, then says it is online: the gateway announces it
    command = button.next_command(timeout=15)
    assert (command["command_id"], command["request_id"]) == (row["command_id"], request_id)
    wait_for(lambda: _commands(pool, button.device_id)[0]["state"] == "sent", what="sent")
    assert not _commands(pool, button.device_id)[0]["held"]
    assert button.commands.empty()  # delivered once


def test_a_command_to_a_device_seen_before_goes_to_its_session_while_it_is_offline(
    gateway, dispatch, broker_url, resident_id, pool
):
    with pool.connection() as conn:
        device, secret = gateway.admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
    button = FakeDevice(broker_url, device.id, secret).connect()
    wait_for(lambda: device_row(pool, device.id)["state"] == "online", what="online")
    button.close()  # a clean disconnect: its persistent session stays at the broker

    _phone(pool, dispatch, resident_id)
    wait_for(lambda: (rows := _commands(pool, device.id)) and rows[0]["state"] == "sent", what="sent into the session")
    back = FakeDevice(broker_url, device.id, secret)
    try:
        back.link.start()  # reconnects to its session: the command is waiting there
        assert back.next_command()["command_id"] == _commands(pool, device.id)[0]["command_id"]
    finally:
        back.close()


def test_an_acknowledged_config_changes_the_report_interval(gateway, dispatch, device_factory, pool):
    bed = device_factory(DeviceKind.BED)
    command_id = unique("c")
    with pool.connection() as conn:
        outbox.put(conn, bed.device_id, {"command_id": command_id, "type": "config", "report_interval_s": 30},
                   kind="config", deadline_s=600)
    assert bed.next_command(timeout=15) == {"command_id": command_id, "type": "config", "report_interval_s": 30}
    assert device_row(pool, bed.device_id)["report_interval_s"] == 10  # not before the device applied it
    bed.ack(command_id)
    wait_for(lambda: device_row(pool, bed.device_id)["report_interval_s"] == 30, what="the new interval")


def test_the_platform_asks_a_device_for_a_self_test_and_the_answer_carries_its_command_id(
    gateway, dispatch, device_factory, pool, log_tap
):
    from homecare.log import streams
    from services.dispatch.usecases.device_commands import ask_selftest

    button = device_factory(DeviceKind.BUTTON)
    with pool.connection() as conn, conn.transaction():
        command_id = ask_selftest(conn, dispatch.ctx, button.device_id, "dispatcher:test", dispatch.ctx.clock())
    command = button.next_command(timeout=15)
    assert command == {"command_id": command_id, "type": "selftest.request"}
    button.ack(command_id)
    button.publish(DeviceChannel.EVENTS, {
        "event_id": unique("st"), "ts": format_ts(datetime.now(UTC)), "type": "device.selftest", "result": "fail",
        "checks": {"button": True, "speaker": False}, "command_id": command_id, "trigger": "platform"})
    wait_for(lambda: _commands(pool, button.device_id)[0]["state"] == "acknowledged", what="acknowledged")
    forwarded = [DeviceEvent.model_validate_json(m.data) for m in log_tap.wait_messages(streams.EVENTS, 1)]
    [answer] = [e for e in forwarded if e.type == "device.selftest"]
    assert (answer.command_id, answer.result, answer.checks) == (command_id, "fail", {"button": True, "speaker": False})
