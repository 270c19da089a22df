"""A power cut against the real broker: devices vanish (the broker sends their last will) and
come back over the jitter window, with their persistent sessions."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

from devices.simulator.bed import BedBehaviour
from devices.simulator.button import ButtonBehaviour
from devices.simulator.clock import SimClock
from devices.simulator.fleet import DeviceSpec, Fleet
from devices.simulator.population import residents
from devices.simulator.scenario import PowerCut
from devices.simulator.stats import SimStats
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DeviceChannel, all_devices_filter, parse_device_topic
from tests.support import unique, wait_for

from .test_transport import SHANGHAI


class StatusLog:
    """Every status message with the time it arrived."""

    def __init__(self, broker_url: str, client_id: str):
        self.lock = threading.Lock()
        self.seen: list[tuple[float, str, dict]] = []
        self.link = MqttLink(BrokerAddress.parse(broker_url), client_id, clean_session=True,
                             subscriptions={all_devices_filter(DeviceChannel.STATUS): self._on})

    def _on(self, client, message) -> None:
        if message.retain:
            return
        with self.lock:
            self.seen.append((time.monotonic(), parse_device_topic(message.topic).device_id,
                              json.loads(message.payload)))

    def of(self, online: bool) -> list[tuple[float, str]]:
        with self.lock:
            return [(t, d) for t, d, p in self.seen if p.get("online") is online]


def test_a_power_cut_drops_devices_without_goodbye_and_they_return_spread_over_the_jitter(broker_url, instance):
    tag = unique("pc")
    clock = SimClock(60, datetime(2026, 11, 29, 9, 0, tzinfo=SHANGHAI))
    specs = []
    for plan in residents(10, seed=4):
        specs.append(DeviceSpec(BedBehaviour(f"bed-{tag}-{plan.index}", plan, 4, SHANGHAI), "s"))
        specs.append(DeviceSpec(ButtonBehaviour(f"btn-{tag}-{plan.index}", plan, 4), "s"))
    ids = {s.behaviour.device_id for s in specs}
    log = StatusLog(broker_url, f"status-{instance}")
    log.link.start()
    stats = SimStats()
    cut = PowerCut(at_s=3.0, share=1.0, outage_s=2.0, jitter_s=4.0)
    fleet = Fleet(broker_url, specs, clock, stats, connect_rate=200, power_cuts=[cut])
    fleet.start()
    try:
        wait_for(lambda: {d for _, d in log.of(True)} == ids, timeout=15, what="every device online")
        wait_for(lambda: stats.get("power_cuts") == 20, timeout=15, what="the power cut")
        cut_at = time.monotonic()
        # Nobody said goodbye: the broker speaks for the vanished devices with their last will.
        wait_for(lambda: {d for _, d in log.of(False)} == ids, timeout=10, what="every last will")
        assert stats.get("disconnects") == 0  # the devices did not see a clean disconnect
        wait_for(lambda: stats.get("connects") == 40, timeout=20, what="every device back")
        # A device counts its connect before its status reaches us through the broker.
        wait_for(lambda: len(log.of(True)) >= 40, timeout=10, what="every device's second online status")
        back = sorted(t for t, _ in log.of(True)[20:])
        assert len(back) == 20 and {d for _, d in log.of(True)[20:]} == ids
        assert back[0] - cut_at >= 1.5, "nobody comes back before the power does"
        assert back[-1] - back[0] >= 1.0, "reconnects spread over the jitter window, not all at once"
        assert stats.get("boots_after_power_cut") == 20 and fleet.connected() == 20
    finally:
        fleet.stop()
        log.link.stop()
