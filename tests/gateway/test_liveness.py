"""Status, last will and silence: the device's liveness in the registry and in the log's STATE
stream (`<ns>.state.<device>`)."""

from __future__ import annotations

import time

import pytest

from homecare.contract import DeviceKind
from homecare.log import streams
from homecare.topics import DeviceChannel
from tests.support import now_ts, wait_for

from .conftest import device_row, get_device


def _state_of(device_id: str, state: str):
    """A DeviceState of this device, on its own subject of the STATE stream."""
    return lambda subject, payload: (
        subject.endswith(f".state.{device_id}") and payload.get("device_id") == device_id
        and payload["state"] == state
    )


@pytest.fixture
def states(log_tap, log_listener):
    """Every device-state transition the gateway stores in this test's log."""
    return log_listener(log_tap.subjects.of_stream("state"))


def test_status_online_then_last_will_offline(gateway, device_factory, states, log_tap, pool):
    button = device_factory(
        DeviceKind.BUTTON, status={"online": True, "fw": "1.4.2", "battery": 0.93, "rssi": -61}
    )
    _, online = states.next(_state_of(button.device_id, "online"))
    assert online["device_kind"] == "button" and online["fw"] == "1.4.2"
    device = get_device(pool, button.device_id)
    assert (device.online, device.state, device.fw, device.battery, device.rssi) == (
        True, "online", "1.4.2", 0.93, -61)
    assert device.last_seen is not None

    # the device drops without DISCONNECT: the broker publishes its last will
    button.link.client.loop_stop()
    button.link.client.socket().close()
    _, offline = states.next(_state_of(button.device_id, "offline"))
    assert offline["resident_id"] == device.resident_id
    device = get_device(pool, button.device_id)
    assert (device.online, device.state, device.fw) == (False, "offline", "1.4.2")
    wait_for(lambda: device_row(pool, button.device_id)["announced_state"] == "offline")
    # both transitions are kept in the STATE stream, in order, on the device's subject
    stored = log_tap.payloads(streams.STATE, log_tap.subjects.state(button.device_id))
    assert [p["state"] for p in stored] == ["online", "offline"]


def test_a_status_update_without_a_change_of_state_is_not_announced(
    gateway, device_factory, states, log_tap, pool
):
    bed = device_factory(DeviceKind.BED, status={"online": True, "fw": "2.0.0"})
    states.next(_state_of(bed.device_id, "online"))
    bed.publish(DeviceChannel.STATUS, {"online": True, "fw": "2.0.1", "rssi": -70}, retain=True)
    wait_for(lambda: device_row(pool, bed.device_id)["fw"] == "2.0.1", what="fw update")
    assert device_row(pool, bed.device_id)["rssi"] == -70
    time.sleep(0.3)  # a transition would be published right after its commit
    assert states.pending(lambda t, p: p.get("device_id") == bed.device_id) == []
    stored = log_tap.payloads(streams.STATE, log_tap.subjects.state(bed.device_id))
    assert [p["state"] for p in stored] == ["online"]


def _battery_of(device_id: str, battery: float):
    return lambda subject, payload: (
        subject.endswith(f".state.{device_id}") and payload.get("battery") == battery
    )


def test_a_battery_running_down_is_announced_once_per_five_percent_band(
    gateway, device_factory, states, log_tap, pool
):
    button = device_factory(DeviceKind.BUTTON, status={"online": True, "battery": 0.93})
    _, online = states.next(_state_of(button.device_id, "online"))
    wait_for(lambda: device_row(pool, button.device_id)["announced_battery"] == 0.93)
    button.publish(DeviceChannel.STATUS, {"online": True, "battery": 0.91}, retain=True)  # the same band
    wait_for(lambda: device_row(pool, button.device_id)["battery"] == 0.91, what="battery 0.91")
    button.publish(DeviceChannel.STATUS, {"online": True, "battery": 0.1}, retain=True)
    _, low = states.next(_battery_of(button.device_id, 0.1))
    # Still online, and newer than the state announced before: a consumer takes it.
    assert low["state"] == "online" and low["at"] > online["at"]
    wait_for(lambda: device_row(pool, button.device_id)["announced_battery"] == 0.1)
    stored = log_tap.payloads(streams.STATE, log_tap.subjects.state(button.device_id))
    assert [p["battery"] for p in stored] == [0.93, 0.1]  # 0.91 was not announced


def test_an_owed_battery_announcement_is_made_again(gateway, device_factory, states, pool):
    button = device_factory(DeviceKind.BUTTON, status={"online": True, "battery": 0.5})
    states.next(_state_of(button.device_id, "online"))
    wait_for(lambda: device_row(pool, button.device_id)["announced_battery"] == 0.5)
    with pool.connection() as conn:  # a low battery committed, its announcement lost in a crash
        conn.execute(
            "UPDATE gateway.devices SET battery = 0.12, battery_at = now() - interval '1 hour' WHERE id = %s",
            (button.device_id,),
        )
    _, again = states.next(_battery_of(button.device_id, 0.12), timeout=gateway.config.announce_retry_s + 10)
    assert again["state"] == "online"
    wait_for(lambda: device_row(pool, button.device_id)["announced_battery"] == 0.12)


@pytest.fixture
def config(config):
    # Beds fall silent after one report interval (set to 1 s below) instead of 30 s.
    return config.model_copy(update={"silent_after_intervals": 1, "silent_min_s": 1})


def test_a_bed_that_stops_reporting_falls_silent_and_comes_back(
    gateway, device_factory, states, pool
):
    bed = device_factory(DeviceKind.BED)
    with pool.connection() as conn:
        conn.execute("UPDATE gateway.devices SET report_interval_s = 1 WHERE id = %s", (bed.device_id,))
    states.next(_state_of(bed.device_id, "online"))
    states.next(_state_of(bed.device_id, "silent"))
    assert device_row(pool, bed.device_id)["state"] == "silent"

    bed.publish(DeviceChannel.TELEMETRY, {"samples": [
        {"ts": now_ts(), "occupied": True, "heart_rate": 58, "movement": 0.0}
    ]})
    states.next(_state_of(bed.device_id, "online"))
    assert device_row(pool, bed.device_id)["state"] in ("online", "silent")  # it may go quiet again


def test_an_owed_announcement_is_made_again(settings, pool, broker_url, config, states,
                                            device_factory, gateway):
    button = device_factory(DeviceKind.BUTTON)
    states.next(_state_of(button.device_id, "online"))
    wait_for(lambda: device_row(pool, button.device_id)["announced_state"] == "online")
    # as if the gateway had stopped between the commit and the broker's acknowledgement
    with pool.connection() as conn:
        conn.execute(
            "UPDATE gateway.devices SET announced_state = NULL,"
            " state_changed_at = now() - interval '1 hour' WHERE id = %s",
            (button.device_id,),
        )
    _, again = states.next(_state_of(button.device_id, "online"), timeout=gateway.config.announce_retry_s + 10)
    assert again["device_kind"] == "button"
    wait_for(lambda: device_row(pool, button.device_id)["announced_state"] == "online")


def test_retained_statuses_replayed_on_subscribe_are_not_sightings_except_a_last_will(
    settings, config, pool, broker_url, gateway, device_factory, states
):
    from gateway.bootstrap import build
    from tests.support import unique

    from .conftest import counter, forget_gateway

    alive = device_factory(DeviceKind.BED)
    gone = device_factory(DeviceKind.BUTTON)
    states.next(_state_of(alive.device_id, "online"))
    states.next(_state_of(gone.device_id, "online"))
    gone.link.client.loop_stop()
    gone.link.client.socket().close()  # its will, {"online": false}, is now the retained status
    states.next(_state_of(gone.device_id, "offline"))
    wait_for(lambda: device_row(pool, alive.device_id)["last_seen"] is not None)
    with pool.connection() as conn:  # as if that will had been missed
        conn.execute(
            "UPDATE gateway.devices SET state = 'online', online = true, announced_state = 'online'"
            " WHERE id = %s", (gone.device_id,),
        )
    seen_before = device_row(pool, alive.device_id)["last_seen"]
    replays = counter("homecare_gateway_messages_total", channel="retained")

    gateway.stop()
    fresh = build(settings.model_copy(update={"instance": unique("t")}), pool, config)
    fresh.start()  # a new session: the broker replays every retained status to it
    try:
        states.next(_state_of(gone.device_id, "offline"))
        assert device_row(pool, gone.device_id)["online"] is False
        wait_for(lambda: counter("homecare_gateway_messages_total", channel="retained") >= replays + 2)
        fresh.edge.housekeeper.flush()
        row = device_row(pool, alive.device_id)
        assert row["last_seen"] == seen_before and row["state"] in ("online", "silent")
    finally:
        fresh.stop()
        forget_gateway(broker_url, fresh.edge.link.client_id)
        gateway.start()
