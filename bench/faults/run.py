"""The fault benchmark: under load, SIGKILL each service in turn and restart it, then restart the
broker and crash-restart the database; after each fault, time the recovery; at the end, account
for every sample and press the devices got the broker to accept."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.simulator import Scenario

from ..common import machine
from ..common.accounting import Windows, account
from ..common.broker_stats import STORED, BrokerStats
from ..common.log_stats import LogStats
from ..common.network import BenchNetwork
from ..common.platform import COMPONENTS, ROOT
from ..common.probe import ProbeButton
from ..common.recovery import FaultResult, backlog_checks, drain, per_fault, run_faults, wait_recovered
from ..common.simulator import finish_city, start_city

log = logging.getLogger("bench.faults")

SERVICES = ("gateway", "telemetry", "dispatch")
FAULTS = (*SERVICES, "broker", "nats", "database")


@dataclass
class FaultOptions:
    devices: int = 2000
    warmup_s: float = 30.0
    settle_s: float = 30.0
    recover_timeout_s: float = 240.0
    faults: tuple[str, ...] = FAULTS
    press_rate: float = 30.0
    drain_quiet_s: float = 10.0  # at the end: the broker's backlog unchanged this long
    shared_subscriptions: bool = False  # the services' $share/... subscriptions (for replicas; off by default)
    data_dir: Path | None = None
    scenario: Path = ROOT / "devices/simulator/scenarios/bench-load.yaml"


def scenario_for(options: FaultOptions) -> Scenario:
    data = Scenario.load(options.scenario).model_dump()
    homes = options.devices // 2
    data.update(homes=homes, providers=max(8, min(data["providers"], homes // 50)), press_rate=options.press_rate)
    data["misbehaviour"]["share"] = 0.0  # every message should be accepted: losses are then exact
    return Scenario.model_validate(data)


def run(options: FaultOptions) -> dict[str, Any]:
    scenario = scenario_for(options)
    data_dir = options.data_dir or ROOT / "bench/.data" / f"net-{scenario.homes * 2}"
    env = {"HOMECARE_MQTT_SHARED_SUBSCRIPTIONS": "true" if options.shared_subscriptions else "false"}
    net = BenchNetwork(data_dir, scenario, platform_env=env)
    sim = crew = stats = probe = backlog = None
    out: dict[str, Any] = {
        "options": {**options.__dict__, "scenario": str(options.scenario), "data_dir": str(data_dir)},
    }
    try:
        net.start()
        platform = net.platform
        assert platform is not None and net.roster is not None
        out["machine"] = machine.describe(net.infra.database_url)
        out["durability_settings"] = net.durability_settings()
        stats = BrokerStats(net.observer_url)
        backlog = LogStats(net.infra.nats_url)
        probe = ProbeButton(net.infra.broker_url, net.meta["probe"]["id"], net.meta["probe"]["secret"])
        run_start = time.time()
        sim, crew = start_city(scenario, data_dir / "run", net.roster_path, net.infra.broker_url,
                               platform.api_url, net.admin, ledger=True)
        devices = len(net.roster.devices())
        sim.wait_for(lambda r: r.get("devices_connected", 0) >= devices, devices / scenario.connect_rate + 120,
                     "every device connected")
        log.info("%d devices connected; warming up %ss", devices, options.warmup_s)
        time.sleep(options.warmup_s)
        out["other_load"] = machine.other_load(machine.our_pids() | set(net.infra.postgres_pids()))
        results = run_faults(options.faults, lambda name: _fault(name, net, sim, stats, backlog, probe, devices,
                                                                  options), options.settle_s)
        report, ledger, _ = finish_city(sim, crew)
        sim = crew = None
        drain([stats], backlog, options.drain_quiet_s)
        windows = Windows(run_start, [(r.name, r.injected_at) for r in results])
        log.info("accounting: every accepted sample and press against what was stored and processed")
        totals = account(net.infra.database_url, ledger, windows, run_start)
        out["faults"] = per_fault(results, windows, report)
        out["before_faults"] = windows.items[0].as_dict()
        out["totals"] = {**totals, "dead_letters": backlog.dead_letters()}
        out["simulator"] = {k: report["stats"].get(k) for k in (
            "samples_sent", "presses", "acks_sent", "connects", "disconnects", "connect_failures",
            "presses_unanswered", "errors_received", "requests_completed")}
        return out
    finally:
        for child in (sim, crew):
            if child is not None:
                child.stop()
        for closable in (probe, stats, backlog):
            if closable is not None:
                closable.close()
        net.stop()


def _fault(name: str, net: BenchNetwork, sim, stats: BrokerStats, backlog: LogStats, probe: ProbeButton,
           devices: int, options: FaultOptions) -> FaultResult:
    platform = net.platform
    baseline = stats.number(STORED) or 0.0
    log.info("fault: %s (broker holds %s messages before)", name, baseline)
    result = FaultResult(name, time.time(), "")
    started = time.monotonic()
    if name in SERVICES:
        result.how = "SIGKILL, then started again"
        platform.kill(name)
        platform.start(name)
    elif name == "broker":
        result.how = "mosquitto stopped (SIGTERM: persistence saved) and started again on the same data"
        net.infra.stop_broker()
        net.infra.start_broker()
    elif name == "broker-kill":
        result.how = "mosquitto SIGKILL (no save), started again on the same data"
        net.infra.stop_broker(kill=True)
        net.infra.start_broker()
    elif name == "nats":
        result.how = "nats-server (the internal log, one node) SIGKILL, started again on the same store"
        net.infra.kill_nats()
        net.infra.start_nats()
    elif name == "database":
        result.how = "pg_ctl restart -m immediate (a crash: no checkpoint, WAL recovery)"
        net.infra.restart_database("immediate")
    else:
        raise ValueError(f"unknown fault {name}")
    result.recovery = _recover(net, sim, stats, backlog, probe, devices, baseline, started, options.recover_timeout_s)
    result.recovery_s = result.recovery.get("recovered_s")
    return result


def _recover(net: BenchNetwork, sim, stats: BrokerStats, backlog: LogStats, probe: ProbeButton, devices: int,
             baseline: float, started: float, timeout: float) -> dict[str, Any]:
    """Recovered: every component ready, every device connected, a probe press answered within
    2 s, the broker's backlog back to what it held before the fault, and the log's consumers
    caught up (a SIGKILLed replica's batch is redelivered after the consumer's ack wait)."""
    platform = net.platform
    return wait_recovered([
        lambda: {"components_ready": all(platform.ready(n) for n in COMPONENTS),
                 "devices_connected": sim.latest.get("devices_connected", 0) >= devices},
        lambda: {"probe_answered": probe.press(2.0) is not None,
                 **backlog_checks([stats], [baseline], backlog, max(100, devices // 5))},
    ], started, timeout)
