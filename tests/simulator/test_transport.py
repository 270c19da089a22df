"""The selector-driven transport against the real broker: many devices from one thread."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devices.simulator.bed import BedBehaviour
from devices.simulator.button import ButtonBehaviour
from devices.simulator.clock import SimClock
from devices.simulator.fleet import DeviceSpec, Fleet
from devices.simulator.population import residents
from devices.simulator.stats import SimStats
from homecare.contract import validate
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DeviceChannel, all_devices_filter, device_topic, parse_device_topic
from launch import embedded
from launch.embedded import free_port
from tests.support import unique, wait_for

SHANGHAI = timezone(timedelta(hours=8))


class Listener:
    """A platform-side subscriber that records what every device published."""

    def __init__(self, broker_url: str, client_id: str, clean_session: bool = True):
        self.received: dict[DeviceChannel, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
        self._lock = threading.Lock()
        channels = (DeviceChannel.STATUS, DeviceChannel.TELEMETRY, DeviceChannel.ACKS, DeviceChannel.EVENTS)
        self.link = MqttLink(
            BrokerAddress.parse(broker_url), client_id, clean_session=clean_session,
            subscriptions={all_devices_filter(c): self._on_message for c in channels},
        )

    def _on_message(self, client, message) -> None:
        topic = parse_device_topic(message.topic)
        with self._lock:
            self.received[topic.channel][topic.device_id].append(bytes(message.payload))

    def of(self, channel: DeviceChannel, device_id: str) -> list[bytes]:
        with self._lock:
            return list(self.received[channel][device_id])

    def devices_on(self, channel: DeviceChannel, ids: set[str]) -> set[str]:
        with self._lock:
            return {d for d in self.received[channel] if d in ids and self.received[channel][d]}


@pytest.fixture
def listener(broker_url, instance):
    lst = Listener(broker_url, f"listener-{instance}")
    lst.link.start()
    yield lst
    lst.link.stop()


def _fleet(broker_url: str, homes: int, stats: SimStats) -> tuple[Fleet, list[str], list[str]]:
    tag = unique("t")
    clock = SimClock(60, datetime(2026, 11, 29, 3, 0, tzinfo=SHANGHAI))
    specs, beds, buttons = [], [], []
    for plan in residents(homes, seed=7):
        bed = BedBehaviour(f"bed-{tag}-{plan.index}", plan, 7, SHANGHAI, report_interval_s=1)
        button = ButtonBehaviour(f"btn-{tag}-{plan.index}", plan, 7)
        specs += [DeviceSpec(bed, "secret-bed"), DeviceSpec(button, "secret-btn")]
        beds.append(bed.device_id)
        buttons.append(button.device_id)
    return Fleet(broker_url, specs, clock, stats, connect_rate=500), beds, buttons


def test_two_hundred_devices_from_one_thread(broker_url, listener):
    stats = SimStats()
    fleet, beds, buttons = _fleet(broker_url, 100, stats)
    everyone = set(beds) | set(buttons)
    threads_before = threading.active_count()
    fleet.start()
    try:
        assert threading.active_count() == threads_before + 1  # the one loop thread, no more
        wait_for(lambda: fleet.connected() == 200, timeout=30, what="200 devices connected")
        assert threading.active_count() == threads_before + 1

        wait_for(lambda: listener.devices_on(DeviceChannel.STATUS, everyone) == everyone,
                 timeout=20, what="a status from every device")
        wait_for(lambda: listener.devices_on(DeviceChannel.TELEMETRY, set(beds)) == set(beds),
                 timeout=20, what="telemetry from every bed")
        for device_id in everyone:
            status = validate(DeviceChannel.STATUS, listener.of(DeviceChannel.STATUS, device_id)[0])
            assert status.online is True
            assert (status.battery is not None) == device_id.startswith("btn-")
        for device_id in beds:
            for payload in listener.of(DeviceChannel.TELEMETRY, device_id):
                assert validate(DeviceChannel.TELEMETRY, payload).samples

        # Commands to every device are acknowledged on its own acks topic.
        commander = MqttLink(BrokerAddress.parse(broker_url), unique("commander"), clean_session=True)
        commander.start()
        sent, infos = {}, []
        for i, device_id in enumerate(sorted(everyone)):
            command_id = f"c-{i}"
            command = (
                {"command_id": command_id, "type": "config", "report_interval_s": 2}
                if device_id.startswith("bed-")
                else {"command_id": command_id, "type": "request.acknowledged",
                      "request_id": f"r-{i}", "service": "meal"}
            )
            sent[device_id] = command_id
            infos.append(commander.publish(device_topic(device_id, DeviceChannel.COMMANDS), json.dumps(command), qos=1))
        for info in infos:
            info.wait_for_publish(10)
        commander.stop()

        def acked() -> bool:
            return all(
                any(json.loads(p)["command_id"] == cid for p in listener.of(DeviceChannel.ACKS, d))
                for d, cid in sent.items()
            )

        wait_for(acked, timeout=20, what="an ack from every device")
        for device_id in everyone:
            for payload in listener.of(DeviceChannel.ACKS, device_id):
                validate(DeviceChannel.ACKS, payload)
        assert stats.typed("commands_received") == {"config": 100, "request.acknowledged": 100}
        wait_for(lambda: stats.get("acks_sent") == 200, timeout=10, what="200 acks counted")
        assert stats.get("samples_sent") > 0
        assert fleet.session(beds[0]).behaviour.report_interval_s == 2  # the config was applied
    finally:
        assert fleet.stop() is True

    # A clean power-off leaves every device's retained status saying offline.
    def all_offline() -> bool:
        return all(json.loads(listener.of(DeviceChannel.STATUS, d)[-1]) == {"online": False} for d in everyone)

    wait_for(all_offline, timeout=10, what="offline status from every device")
    assert stats.get("connects") == 200
    assert stats.get("errors_received") == 0


def test_after_a_broker_restart_devices_reconnect_and_send_what_they_kept(tmp_path, instance):
    """Samples taken while the broker was down arrive afterwards (no gap in the series), and a
    command queued for the offline device in its persistent session reaches it and is acked."""
    port = free_port()
    broker = embedded.start_mosquitto(tmp_path / "broker", port=port)
    url = broker.url
    stats = SimStats()
    fleet, beds, buttons = _fleet(url, 1, stats)
    listener = Listener(url, f"listener-{instance}", clean_session=False)
    listener.link.start()
    fleet.start()
    try:
        wait_for(lambda: listener.of(DeviceChannel.STATUS, buttons[0]), timeout=10, what="the button's status")
        wait_for(lambda: listener.of(DeviceChannel.TELEMETRY, beds[0]), timeout=10, what="first telemetry")
        broker.stop()
        wait_for(lambda: fleet.connected() == 0, timeout=10, what="devices see the broker gone")
        down_at = datetime.now(UTC)
        # Reconnection attempts back off (about 1, 2, 4 s): the third comes after the broker is
        # back and the command is queued, so the button is offline when the command is sent.
        time.sleep(4)
        broker = embedded.start_mosquitto(tmp_path / "broker", port=port)
        commander = MqttLink(BrokerAddress.parse(url), unique("commander"), clean_session=True)
        commander.start()
        assert not fleet.session(buttons[0]).connected
        command = {"command_id": "c-restart", "type": "request.completed", "request_id": "r-1", "service": "meal"}
        commander.publish(device_topic(buttons[0], DeviceChannel.COMMANDS), json.dumps(command)).wait_for_publish(5)
        commander.stop()

        def acked() -> bool:
            return any(json.loads(p)["command_id"] == "c-restart" for p in listener.of(DeviceChannel.ACKS, buttons[0]))

        wait_for(acked, timeout=30, what="the queued command acked after reconnecting")
        wait_for(lambda: fleet.connected() == 2, timeout=10, what="both devices back")

        def samples() -> list[datetime]:
            payloads = listener.of(DeviceChannel.TELEMETRY, beds[0])
            return sorted({s.ts for p in payloads for s in validate(DeviceChannel.TELEMETRY, p).samples})

        wait_for(lambda: samples()[-1] > down_at + timedelta(seconds=6), timeout=15, what="telemetry after the outage")
        stamps = samples()
        assert any(down_at < t < down_at + timedelta(seconds=3) for t in stamps), "samples from the outage"
        gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
        assert max(gaps) < 1.5, "a sample a second, outage included"
        assert stats.get("connects") == 4 and stats.get("disconnects") == 2
    finally:
        fleet.stop()
        listener.link.stop()
        broker.stop()


def test_each_device_connects_to_the_broker_it_was_placed_on(tmp_path, instance):
    """A device with a broker of its own (the shard provisioning placed it on) connects there;
    the others connect to the fleet's broker. Two brokers of the test's own: nothing else
    publishes on them."""
    main, shard = embedded.start_mosquitto(tmp_path / "shard-a"), embedded.start_mosquitto(tmp_path / "shard-b")
    on_main = Listener(main.url, f"listener-a-{instance}")
    on_shard = Listener(shard.url, f"listener-b-{instance}")
    try:
        on_shard.link.start()
        on_main.link.start()
        assert on_shard.link.wait_subscribed(15) and on_main.link.wait_subscribed(15)
        tag = unique("t")
        clock = SimClock(60, datetime(2026, 11, 29, 3, 0, tzinfo=SHANGHAI))
        plans = residents(2, seed=7)
        placed = ButtonBehaviour(f"btn-{tag}-b", plans[0], 7)
        default = ButtonBehaviour(f"btn-{tag}-a", plans[1], 7)
        fleet = Fleet(main.url, [DeviceSpec(placed, "s", shard.url), DeviceSpec(default, "s")], clock,
                      SimStats(), connect_rate=500)
        fleet.start()
        try:
            wait_for(lambda: fleet.connected() == 2, timeout=20, what="both devices connected")
            wait_for(lambda: on_shard.devices_on(DeviceChannel.STATUS, {placed.device_id}),
                     timeout=20, what="the placed device's status on its shard")
            wait_for(lambda: on_main.devices_on(DeviceChannel.STATUS, {default.device_id}),
                     timeout=20, what="the other device's status on the fleet's broker")
            assert not on_main.of(DeviceChannel.STATUS, placed.device_id)
            assert not on_shard.of(DeviceChannel.STATUS, default.device_id)
        finally:
            fleet.stop()
    finally:
        on_shard.link.stop()
        on_main.link.stop()
        shard.stop()
        main.stop()
