"""The load benchmark, phase by phase: the network and a city of devices, a steady window,
then the capacity of the platform and of the bare pipe by draining a backlog."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devices.simulator import Scenario

from ..common import machine
from ..common.broker_stats import BrokerStats
from ..common.children import JsonLinesChild
from ..common.metrics import by_label, histogram_quantile, total
from ..common.network import BenchNetwork
from ..common.platform import PROCESSES, ROOT
from ..common.probe import ProbeButton
from ..common.simulator import start_city
from .drain import Drain, measure_drain
from .hops import hops
from .requests import press_to_offer

log = logging.getLogger("bench.load")

STORED = "homecare_telemetry_samples_stored_total"


@dataclass
class LoadOptions:
    devices: int = 10_000
    duration_s: float = 120.0
    warmup_s: float = 30.0
    backlog_s: float = 25.0  # below the gateway's silent threshold (3 report intervals, 30 s)
    misbehaving: float = 0.02
    broker_auth: bool = True
    between_s: float = 10.0  # quiet between the two drains
    probe_every_s: float = 2.0  # the benchmark's own button presses this often in the steady window
    settle_timeout_s: float = 180.0
    settle_s: float = 15.0  # before the end state is read
    data_dir: Path | None = None
    scenario: Path = ROOT / "devices/simulator/scenarios/bench-load.yaml"


@dataclass
class LoadRun:
    """Everything measured; `report.compose` turns it into the result."""

    options: LoadOptions
    scenario: Scenario
    machine: dict[str, Any] = field(default_factory=dict)
    other_load: dict[str, Any] = field(default_factory=dict)
    connect_s: float | None = None
    settle_s: float | None = None  # from every device connected to the platform caught up
    window: dict[str, Any] = field(default_factory=dict)
    broker_series: list[tuple[float, float | None]] = field(default_factory=list)
    cpu_cores: dict[str, float] = field(default_factory=dict)
    cpu_series: list[dict[str, float]] = field(default_factory=list)  # cores per group, each second of the window
    bare_drain: Drain | None = None
    platform_drain: Drain | None = None
    offers: dict[str, Any] = field(default_factory=dict)
    probe_ms: list[float | None] = field(default_factory=list)  # None: no answer within 5 s
    probe_at: list[float] = field(default_factory=list)  # when each was pressed (unix time), to line up with logs
    hops: dict[str, Any] = field(default_factory=dict)
    log_waits: dict[str, Any] = field(default_factory=dict)  # dispatch's consumers, from its /metrics
    end: dict[str, Any] = field(default_factory=dict)
    sim_report: dict[str, Any] = field(default_factory=dict)
    crew_report: dict[str, Any] = field(default_factory=dict)
    gateway_metrics: dict[str, Any] = field(default_factory=dict)
    provision_s: float | None = None
    closed_earlier_requests: int = 0


def scenario_for(options: LoadOptions) -> Scenario:
    base = Scenario.load(options.scenario)
    data = base.model_dump()
    data["homes"] = options.devices // 2
    # One provider per 50 homes (100 for the city): each polls its offers through the API.
    data["providers"] = max(8, min(base.providers, data["homes"] // 50))
    data["misbehaviour"]["share"] = options.misbehaving
    return Scenario.model_validate(data)


def run(options: LoadOptions) -> LoadRun:
    scenario = scenario_for(options)
    data_dir = options.data_dir or ROOT / "bench/.data" / f"net-{scenario.homes * 2}"
    result = LoadRun(options, scenario)
    net = BenchNetwork(data_dir, scenario, broker_auth=options.broker_auth)
    sim = crew = bare = stats = None
    try:
        log.info("starting the network in %s", data_dir)
        net.start()
        result.provision_s = net.meta.get("provision_s")
        result.closed_earlier_requests = net.close_earlier_requests()
        log.info("closed %d requests earlier runs left open", result.closed_earlier_requests)
        platform = net.platform
        assert platform is not None and net.roster is not None
        result.machine = machine.describe(net.infra.database_url)
        stats = BrokerStats(net.observer_url)
        bare = JsonLinesChild(
            "bare-pipe", [sys.executable, "-m", "bench.common.bare_pipe", net.observer_url, net.infra.database_url],
            _plain_env(), data_dir / "logs" / "bare-pipe.log", ROOT,
        )
        bare.wait_for(lambda r: "samples" in r, 60, "the bare pipe subscribed")
        sim, crew = start_city(scenario, data_dir / "run", net.roster_path, net.infra.broker_url, platform.api_url,
                               net.admin)
        started = time.monotonic()
        devices = len(net.roster.devices())
        log.info("connecting %d devices", devices)
        sim.wait_for(lambda r: r.get("devices_connected", 0) >= devices, devices / scenario.connect_rate + 120,
                     "every device connected")
        result.connect_s = round(time.monotonic() - started, 1)
        log.info("all %d devices connected in %ss; waiting for the platform to catch up", devices, result.connect_s)
        beds = len(net.roster.residents)  # a sample a second each
        result.settle_s = settle(sim, lambda: _stored(platform), 3 * beds, options.settle_timeout_s)
        log.info("platform caught up after %ss; warming up %ss", result.settle_s, options.warmup_s)
        time.sleep(options.warmup_s)
        result.other_load = machine.other_load(machine.our_pids() | set(net.infra.postgres_pids()))
        _steady_window(result, net, sim, crew, bare, stats)
        if options.backlog_s > 0:
            offered = lambda: int(sim.latest.get("samples_sent", 0))  # noqa: E731
            log.info("bare pipe: paused %ss, then draining", options.backlog_s)
            result.bare_drain = measure_drain(
                lambda: bare.send(signal.SIGSTOP), lambda: bare.send(signal.SIGCONT),
                lambda: bare.latest.get("samples"),
                offered, options.backlog_s,
            )
            time.sleep(options.between_s)
            log.info("platform (gateway): paused %ss, then draining", options.backlog_s)
            result.platform_drain = measure_drain(
                lambda: platform.pause("gateway"), lambda: platform.resume("gateway"),
                lambda: _stored(platform), offered, options.backlog_s,
            )
        time.sleep(options.settle_s)
        result.end = _end_state(net, sim, bare, stats)
        result.sim_report = sim.finish()
        sim = None
        # Scraped once the devices have stopped and the gateway has handled their last messages:
        # what they sent is then compared with what the gateway made of all of it.
        result.gateway_metrics = _settled(lambda: _gateway_figures(
            platform.metrics("gateway"), platform.metrics("telemetry"), platform.metrics("dispatch")))
        result.crew_report = crew.finish()
        crew = None
        try:
            result.offers = press_to_offer(platform.api_url, net.admin, result.window["t0"], result.window["t1"],
                                           result.sim_report.get("press_sent_at", {}))
        except Exception as exc:  # the rest of the measurements stand; say why this one is missing
            log.exception("press -> first offer could not be read")
            result.offers = {"error": f"{type(exc).__name__}: {exc}"}
        return result
    finally:
        for child in (sim, crew, bare):
            if child is not None:
                child.stop()
        if stats is not None:
            stats.close()
        net.stop()


def settle(sim, stored, allowance: int, timeout_s: float) -> float | None:
    """Wait until the platform has stored what the devices sent, but for `allowance` samples (a
    city connecting at once is a burst of statuses and backlog); the seconds it took, None if it
    did not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        sent, done = sim.latest.get("samples_sent", 0), stored()
        # Right after connecting the beds have sent little, so a small lag alone proves nothing
        # (a gateway still busy with 10,000 statuses has stored nothing yet).
        if done is not None and sent > 2 * allowance and sent - done <= allowance:
            return round(time.monotonic() - started, 1)
        time.sleep(1.0)
    return None


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}


def _stored(platform) -> int | None:
    metrics = platform.metrics("telemetry")
    return int(total(metrics, STORED)) if metrics else None


def _steady_window(result: LoadRun, net: BenchNetwork, sim, crew, bare, stats: BrokerStats) -> None:
    platform = net.platform
    groups = _cpu_groups(net, sim, crew, bare)
    meter = machine.CpuMeter()
    t0 = time.time()
    before = {"sim": sim.latest, "bare": bare.latest, "stored": _stored(platform), "broker": stats.snapshot()}
    dispatch_before = platform.metrics("dispatch")
    meter.start(groups)
    series = machine.CpuSeries({name: (lambda pids=pids: pids) for name, pids in groups.items()
                                if name != "postgres"} | {"postgres": net.infra.postgres_pids})
    series.start()
    log.info("steady window: %ss", result.options.duration_s)
    end = time.monotonic() + result.options.duration_s
    done = threading.Event()
    prober = threading.Thread(target=_probe, args=(net, result, done), name="probe", daemon=True)
    prober.start()
    while time.monotonic() < end:
        result.broker_series.append((round(time.time() - t0, 1), stats.number("$SYS/broker/store/messages/count")))
        time.sleep(min(5.0, max(0.0, end - time.monotonic())))
    done.set()
    result.cpu_cores = meter.stop(groups)
    result.cpu_series = series.stop()
    t1 = time.time()
    prober.join(10)
    try:
        result.hops = hops(net.infra.database_url, datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC))
    except Exception as exc:  # the rest of the measurements stand; say why this one is missing
        log.exception("the hops of press -> acknowledgement could not be read")
        result.hops = {"error": f"{type(exc).__name__}: {exc}"}
    result.log_waits = consumer_times(dispatch_before, platform.metrics("dispatch"))
    after = {"sim": sim.latest, "bare": bare.latest, "stored": _stored(platform), "broker": stats.snapshot()}
    rows = sim.since(t0)
    lag_max = max((r.get("loop_lag_max_ms") or 0) for r in rows) if rows else None
    result.window = {"t0": t0, "t1": t1, "before": before, "after": after, "lag_max_ms": lag_max}


def consumer_times(before: dict, after: dict) -> dict[str, Any]:
    """Per dispatch consumer, over the window: how long messages waited in the log before it
    started on them, and how long it took on each (bucket upper bounds of the p50 and p99, ms);
    and how long its threads waited for a database connection."""
    out: dict[str, Any] = {}
    for (name, labels), _ in after.items():
        consumer = dict(labels).get("consumer")
        if name != "homecare_log_wait_seconds_count" or consumer is None:
            continue
        figures: dict[str, Any] = {}
        for kind, metric in (("wait", "homecare_log_wait_seconds"), ("handle", "homecare_log_handle_seconds")):
            delta = {key: value - before.get(key, 0.0) for key, value in after.items()
                     if key[0] == f"{metric}_bucket" and dict(key[1]).get("consumer") == consumer}
            for q in (0.5, 0.99):
                bound = histogram_quantile(delta, metric, q)
                figures[f"{kind}_p{round(q * 100)}_ms_at_most"] = None if bound is None else bound * 1000
            figures[f"{kind}_count"] = round(total(after, f"{metric}_count", consumer=consumer)
                                             - total(before, f"{metric}_count", consumer=consumer))
        out[consumer] = figures
    out["db_pool"] = {  # dispatch's connections: threads waiting for one
        "wait_s": round(total(after, "homecare_db_pool_wait_seconds_total")
                        - total(before, "homecare_db_pool_wait_seconds_total"), 3),
        "queued": round(total(after, "homecare_db_pool_queued_total") - total(before, "homecare_db_pool_queued_total")),
        "max": total(after, "homecare_db_pool_max"),
    }
    return out


def _probe(net: BenchNetwork, result: LoadRun, done: threading.Event) -> None:
    """The benchmark's own button, a connection of its own outside the simulator (whose event
    loop, busy with thousands of devices, adds its own lag to what it times), presses every
    `probe_every_s` and times the answer: the platform's press -> acknowledgement at a device."""
    shard, probe = next(iter(net.meta["probes"].items()))
    button = ProbeButton(net.probe_url(shard), probe["id"], probe["secret"])
    try:
        while not done.wait(result.options.probe_every_s):
            result.probe_at.append(round(time.time(), 3))
            latency = button.press(timeout=5.0)
            result.probe_ms.append(None if latency is None else round(latency * 1000, 1))
    finally:
        button.close()


def _cpu_groups(net: BenchNetwork, sim, crew, bare) -> dict[str, list[int]]:
    platform = net.platform
    groups = {name.replace("-", "_"): [platform.pid(name)] for name in PROCESSES}  # gateway_control: its lane
    groups["simulator_devices"] = [sim.proc.pid]
    groups["simulator_providers"] = [crew.proc.pid]
    groups["bare_pipe"] = [bare.proc.pid]
    if net.infra.broker_pid:
        groups["mosquitto"] = [net.infra.broker_pid]
    groups["postgres"] = net.infra.postgres_pids()
    return groups


def _end_state(net: BenchNetwork, sim, bare, stats: BrokerStats) -> dict[str, Any]:
    sent = int(sim.latest.get("samples_sent", 0))
    stored = _stored(net.platform)
    return {
        "broker": stats.snapshot(),
        "samples_sent": sent,
        # Both counters start with this run: the simulator and the telemetry process are its own.
        "platform_lag_samples": None if stored is None else sent - stored,
        "bare_pipe_lag_samples": sent - int(bare.latest.get("samples", 0)),
    }


def _settled(read: Callable[[], dict[str, Any]], quiet_s: float = 2.0, timeout_s: float = 30.0) -> dict[str, Any]:
    """`read()` once two readings `quiet_s` apart agree (or at `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = read()
        if now == last:
            break
        last = now
    return last


def _gateway_figures(gateway: dict, telemetry: dict, dispatch: dict) -> dict[str, Any]:
    return {
        "rejected_by_code": {
            k: int(v) for k, v in by_label(gateway, "homecare_gateway_rejected_total", "code").items()
        },
        # Repeats are dropped by their consumers now (dispatch: a press by its event id).
        "event_duplicates": int(by_label(dispatch, "dispatch_events_total", "outcome").get("duplicate", 0)),
        "sample_duplicates": int(total(telemetry, "homecare_telemetry_samples_duplicates_total")),
        "messages_by_channel": {k: int(v) for k, v in
                                by_label(gateway, "homecare_gateway_messages_total", "channel").items()},
    }
