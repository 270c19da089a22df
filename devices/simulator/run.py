"""The simulation as one object: provision, run devices and providers, report, stop."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import population
from .api import OperatorApi
from .bed import BedBehaviour
from .button import ButtonBehaviour
from .clock import SimClock, sim_start_at
from .crew import ProviderCrew
from .fleet import DeviceSpec, Fleet
from .ledger import Ledger
from .misbehaviour import Misbehaving, assign_faults
from .providers import ProviderPolicy, app_losses
from .provisioning import new_run_tag, provision, provision_care
from .roster import Roster
from .scenario import Scenario
from .selftest import before_v11
from .shards import Shard
from .stats import DEVICE_COUNTERS, PROVIDER_COUNTERS, TYPED_GROUPS, SimStats

log = logging.getLogger(__name__)

__all__ = ["Scenario", "Simulation"]


class Simulation:
    """Simulated homes (a bed and a button each) and providers against a running network.

    `start()` enrols everything through the operator API as `admin_username` (unless a roster
    from an earlier run is given), connects every device to the broker and sets the providers
    to work; `stop()` powers the devices off cleanly and stops the providers.

    Several processes can share one population: each is given the same roster and its own
    `shard` (i of n); shard i runs the homes whose index is i modulo n, and only shard 0 runs
    the providers. `ledger=True` keeps the account of what the broker accepted (`self.ledger`).
    """

    def __init__(
        self,
        api_url: str,
        broker_url: str,
        scenario: Scenario,
        admin_username: str,
        admin_password: str,
        *,
        roster: Roster | None = None,
        shard: Shard | None = None,
        ledger: bool = False,
        providers: bool | None = None,
        devices: bool = True,
    ):
        self.api_url, self.broker_url, self.scenario = api_url, broker_url, scenario
        self._admin = (admin_username, admin_password)
        self.roster = roster
        self.shard = shard or Shard(0, 1)
        self.run_providers = self.shard.index == 0 if providers is None else providers
        self.run_devices = devices
        self.ledger = Ledger() if ledger else None
        self.faults: dict[str, str] = {}
        self.before_v11: set[str] = set()  # devices of this process with firmware built before v1.1
        self._device_count = 0
        self._stats = SimStats()
        self.clock: SimClock | None = None
        self.fleet: Fleet | None = None
        self.crew: ProviderCrew | None = None
        self._started_at: float | None = None
        self._stopped = threading.Event()

    def provision(self) -> Roster:
        """Enrol the scenario's residents, devices, providers and provider logins (once), then
        their planned care: shifts, care plans and the day's routes (`scenario.care`)."""
        if self.roster is None:
            s = self.scenario
            api = OperatorApi(self.api_url)
            try:
                api.wait_ready()
                api.sign_in(*self._admin)
                homes = population.residents(s.homes, s.seed, s.districts)
                crew = population.providers(s.providers, s.seed, s.districts)
                roster = provision(api, s.run_tag or new_run_tag(), homes, crew)
                self.roster = provision_care(api, roster, homes, crew, s.seed, s.care, s.tz())
            finally:
                api.close()
        return self.roster

    def start(self) -> None:
        """Provision if needed, then power on the devices and start the providers."""
        roster = self.provision()
        s = self.scenario
        self.clock = SimClock(s.speed, sim_start_at(s.tz(), s.start_time))
        self.fleet = Fleet(
            self.broker_url, self._devices(roster), self.clock, self._stats,
            connect_rate=s.connect_rate, keepalive=s.keepalive_s, power_cuts=s.power_cuts,
            ledger=self.ledger, seed=s.seed,
        )
        self._device_count = len(self.fleet.sessions)
        if self.run_providers:
            lost = app_losses(s.provider, s.providers, s.seed)  # over the whole scenario: shards agree
            crew = [
                (p, ProviderPolicy(p.name, (p.lat, p.lon), p.capacity, s.provider, f"{s.seed}:{p.index}",
                                   app_lost_after_s=lost.get(p.index)))
                for p in roster.providers
            ]
            homes = {r.id: (r.lat, r.lon) for r in roster.residents}
            self.crew = ProviderCrew(
                self.api_url, crew, s.speed, self._stats, homes, poll_interval_s=s.provider.poll_interval_s,
                heartbeat_s=s.provider.heartbeat_s,
                plan_tz=s.tz() if roster.planned_days else None,  # follow the planned routes
            )
        self._started_at = time.monotonic()
        if self.crew is not None:
            self.crew.start()
        self.fleet.start()
        log.info(
            "simulation %s started: %d of %d homes (shard %s), %d providers, %d misbehaving devices,"
            " %d devices built before v1.1, speed %sx, simulated time %s",
            s.name, len(self.fleet.sessions) // 2, len(roster.residents), self.shard,
            len(roster.providers) if self.crew else 0, len(self.faults), len(self.before_v11), s.speed,
            self.clock.sim_now().isoformat(timespec="minutes"),
        )

    def _devices(self, roster: Roster) -> list[DeviceSpec]:
        s = self.scenario
        if not self.run_devices:
            return []
        homes = [h for h in roster.residents if self.shard.owns(h.index)]
        # Drawn over the whole population, so every shard agrees on who misbehaves and who is old.
        everyone = [(d.id, d.kind) for d in roster.devices()]
        old = before_v11([d for d, _ in everyone], s.before_v11_share, s.seed)
        faults = assign_faults(everyone, s.misbehaviour, s.seed, before_v11=old)
        specs = []
        for home in homes:
            plan = population.resident(home.index, s.seed, s.districts)
            old_bed, old_button = home.bed.id in old, home.button.id in old
            bed = BedBehaviour(
                home.bed.id, plan, s.seed, s.tz(), fw=s.before_v11_bed_fw if old_bed else s.bed_fw,
                report_interval_s=s.report_interval_s, sample_interval_s=s.sample_interval_s,
                epoch_ms=s.bed_timestamps == "ms", before_v11=old_bed, selftest_interval_h=s.selftest_interval_h,
            )
            button = ButtonBehaviour(
                home.button.id, plan, s.seed, press_rate_factor=s.press_rate,
                fw=s.before_v11_button_fw if old_button else s.button_fw, tick_s=s.button_tick(),
                before_v11=old_button, selftest_interval_h=s.selftest_interval_h,
            )
            self.before_v11 |= old & {home.bed.id, home.button.id}
            for behaviour, device in ((bed, home.bed), (button, home.button)):
                fault = faults.get(behaviour.device_id)
                if fault is not None:
                    self.faults[behaviour.device_id] = fault.value
                    behaviour = Misbehaving(behaviour, fault, s.misbehaviour, s.seed)
                specs.append(DeviceSpec(behaviour, device.secret, device.mqtt_url))
        return specs

    def stop(self) -> None:
        """Stop the providers, then power every device off cleanly; safe to call twice."""
        if self.crew is not None:
            self.crew.stop()
            self.crew = None
        if self.fleet is not None:
            self._stats.add("presses_unanswered", self.fleet.unanswered_presses())
            self.fleet.stop()
            self.fleet = None
        self._stopped.set()
        log.info("simulation %s stopped", self.scenario.name, extra=self.stats())

    def run(self, duration_s: float | None = None) -> None:
        """Start, run for `duration_s` (default: the scenario's; None: until `stop()`), stop."""
        self.start()
        try:
            self._stopped.wait(duration_s if duration_s is not None else self.scenario.duration_s)
        finally:
            self.stop()

    @property
    def counters(self) -> SimStats:
        """The live counters and series (e.g. `series("press_to_ack_ms")`)."""
        return self._stats

    def take_lag_max_ms(self) -> float:
        """The loop's worst timer lateness since the last call, in ms."""
        return round(self.fleet.loop.take_lag_max() * 1000, 1) if self.fleet else 0.0

    def provider_logins(self) -> list[tuple[str, str]]:
        """(username, password) of every simulated provider, e.g. to sign in as one in the console."""
        return [(p.username, p.password) for p in self.roster.providers] if self.roster else []

    def stats(self) -> dict[str, Any]:
        """Counters so far: devices, telemetry, presses, commands, acks, errors, offers, requests."""
        snapshot = self._stats.snapshot()
        out: dict[str, Any] = {key: snapshot.get(key, 0) for key in (*DEVICE_COUNTERS, *PROVIDER_COUNTERS)}
        out.update({group: snapshot.get(group, {}) for group in TYPED_GROUPS})
        fleet = self.fleet
        out["devices_total"] = self._device_count
        out["devices_connected"] = fleet.connected() if fleet else 0
        out["devices_misbehaving"] = len(self.faults)
        out["devices_before_v11"] = len(self.before_v11)
        out["loop_lag_ms"] = round(fleet.loop.lag_s * 1000, 1) if fleet else 0.0
        out["press_to_ack_ms"] = self._stats.summary("press_to_ack_ms")
        out["providers"] = len(self.roster.providers) if self.roster and self.crew else 0
        out["speed"] = self.scenario.speed
        out["elapsed_s"] = round(time.monotonic() - self._started_at, 1) if self._started_at else 0.0
        out["sim_time"] = self.clock.sim_now().isoformat(timespec="seconds") if self.clock else None  # local
        return out
