"""The city shape on one machine, under load: a 3-node NATS cluster (streams with 3 replicas), 2
mosquitto shards each with its bridge (the gateway's two lane processes), 2 replicas each of
telemetry and dispatch, the console, and the simulated devices spread over the shards, pressing
and reporting, with providers taking offers. One at a time, with a settle period between, it
SIGKILLs the NATS stream leader, a telemetry replica, a dispatch replica and a bridge (each
started again), restarts a broker shard gracefully and, reported apart, SIGKILLs a broker shard.
After each fault it times the recovery; at the end it accounts, from the devices' side, for
every sample and press a broker acknowledged (bench.common.accounting)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..common import machine
from ..common.accounting import Windows, account
from ..common.broker_stats import STORED, BrokerStats
from ..common.infra import Infra
from ..common.log_stats import LogStats
from ..common.nats_cluster import NatsCluster
from ..common.network import BenchNetwork
from ..common.platform import ROOT, Layout
from ..common.probe import ProbeButton
from ..common.recovery import FaultResult, backlog_checks, before_faults, drain, per_fault, run_faults, wait_recovered
from ..common.simulator import finish_city, start_city
from ..faults.run import FaultOptions, scenario_for

log = logging.getLogger("bench.scaleout")

SHARDS = ("a", "b")
FAULTS = ("nats-leader", "telemetry-replica", "dispatch-replica", "bridge", "broker-restart", "broker-kill")
# The stream whose leader is killed: the presses' (a node leads several streams; all are recorded).
LEADER_OF = "EVENTS"
# Periods of a run: `short` to develop on a few hundred devices, `normal` for the figures.
PERIODS = {
    "short": {"warmup_s": 15.0, "settle_s": 15.0, "down_s": 3.0, "drain_quiet_s": 5.0},
    "normal": {"warmup_s": 60.0, "settle_s": 45.0, "down_s": 10.0, "drain_quiet_s": 10.0},
}


@dataclass
class ScaleoutOptions(FaultOptions):
    devices: int = 4000
    faults: tuple[str, ...] = FAULTS
    shards: tuple[str, ...] = SHARDS
    nats_nodes: int = 3
    replicas: int = 2  # of telemetry and of dispatch
    down_s: float = 10.0  # how long a SIGKILLed process or node stays down before it is started again
    fault_shard: str = "b"  # the shard whose broker is restarted and killed
    bridge_shard: str = "a"  # the shard whose bridge is killed
    namespace: str = ""  # the log's (HOMECARE_LOG_NAMESPACE); empty: a fresh one for the run


def city_layout(options: ScaleoutOptions) -> Any:
    """The platform's processes once the brokers' addresses are known: per shard a bridge (two
    lane processes, `gateway-<shard>` and `gateway-<shard>-control`, group `bridge-<shard>`),
    `telemetry-<i>` and `dispatch-<i>` replicas, and the console. Every process knows every
    shard (HOMECARE_MQTT_SHARDS); a bridge's HOMECARE_MQTT_URL is its own shard's."""

    def layout(infra: Infra) -> Layout:
        shards = ",".join(f"{name}={infra.broker_urls[name]}" for name in infra.shards)
        common = {"HOMECARE_MQTT_SHARDS": shards, "HOMECARE_LOG_REPLICAS": str(min(3, options.nats_nodes))}
        first = infra.broker_urls[infra.shards[0]]
        processes: dict[str, tuple[str, dict[str, str]]] = {}
        groups: dict[str, tuple[str, ...]] = {}
        for shard in infra.shards:
            bridge = {**common, "HOMECARE_MQTT_URL": infra.broker_urls[shard], "HOMECARE_GATEWAY_SHARD": shard,
                      "HOMECARE_INSTANCE": f"bench-{shard}"}
            processes[f"gateway-{shard}"] = ("gateway", {**bridge, "HOMECARE_GATEWAY_LANES": "bulk"})
            processes[f"gateway-{shard}-control"] = ("gateway", {**bridge, "HOMECARE_GATEWAY_LANES": "control"})
            groups[f"bridge-{shard}"] = (f"gateway-{shard}", f"gateway-{shard}-control")
        for component in ("telemetry", "dispatch"):
            for i in range(1, options.replicas + 1):
                processes[f"{component}-{i}"] = (component, {**common, "HOMECARE_MQTT_URL": first,
                                                             "HOMECARE_INSTANCE": f"bench-{i}"})
            groups[component] = tuple(f"{component}-{i}" for i in range(1, options.replicas + 1))
        processes["console"] = ("console", {**common, "HOMECARE_MQTT_URL": first})
        groups["bridges"] = tuple(p for p in processes if p.startswith("gateway-"))
        groups["all"] = tuple(processes)
        return Layout(processes, groups)

    return layout


def run(options: ScaleoutOptions) -> dict[str, Any]:
    scenario = scenario_for(options)
    data_dir = options.data_dir or ROOT / "bench/.data" / f"city-{scenario.homes * 2}"
    namespace = options.namespace or f"SO{int(time.time())}"
    os.environ["HOMECARE_LOG_NAMESPACE"] = namespace  # the platform's processes and the observer
    os.environ["HOMECARE_LOG_REPLICAS"] = str(min(3, options.nats_nodes))
    net = BenchNetwork(data_dir, scenario, shards=options.shards, nats_nodes=options.nats_nodes,
                       layout=city_layout(options))
    sim = crew = backlog = tracker = None
    brokers: dict[str, BrokerStats] = {}
    probes: dict[str, ProbeButton] = {}
    out: dict[str, Any] = {
        "options": {**options.__dict__, "scenario": str(options.scenario), "data_dir": str(data_dir),
                    "log_namespace": namespace},
    }
    try:
        net.start()
        platform, infra = net.platform, net.infra
        assert platform is not None and net.roster is not None and infra.nats_cluster is not None
        # A run's presses must open requests of their own, and its providers be free for them.
        out["closed_earlier_requests"] = net.close_earlier_requests()
        out["provision_s"] = net.meta.get("provision_s")
        out["machine"] = {**machine.describe(infra.database_url), "nats_server": _nats_version()}
        out["shape"] = _shape(net)
        out["durability_settings"] = net.durability_settings()
        out["recovery_rule"] = (
            "from the fault (its down period included) until, at one look: a probe press on each shard answered "
            "within 2 s (probe_<shard>_answered_s: when the press path first worked again); what was killed "
            "started again, every process ready, every NATS node up, every device connected (a simulator report "
            "after the fault); each broker holding no more than before (x1.1 + 100), and at most "
            f"{max(100, options.devices // 5)} messages owed by the log's consumers (pending + unacknowledged: "
            "the steady flow)")
        brokers = {shard: BrokerStats(net.observer_url_of(shard), client_id=f"bench-sys-{shard}")
                   for shard in infra.shards}
        backlog = LogStats(infra.nats_url)
        probes = {shard: ProbeButton(net.probe_url(shard), p["id"], p["secret"])
                  for shard, p in net.meta["probes"].items()}
        tracker = machine.CpuTracker(_cpu_groups(net, lambda: (sim, crew)))
        tracker.start()
        run_start = time.time()
        sim, crew = start_city(scenario, data_dir / "run", net.roster_path, infra.broker_url,
                               platform.api_url, net.admin, ledger=True)
        devices = len(net.roster.devices())
        sim.wait_for(lambda r: r.get("devices_connected", 0) >= devices, devices / scenario.connect_rate + 180,
                     "every device connected")
        log.info("%d devices connected over %d shards; warming up %ss", devices, len(infra.shards), options.warmup_s)
        time.sleep(options.warmup_s)
        # Which shards' presses are answered at all before any fault (a probe press each).
        answering = {shard: _first_answer(probe) for shard, probe in probes.items()}
        out["probes_before_faults_s"] = {s: None if v is None else round(v, 3) for s, v in answering.items()}
        required = [shard for shard, took in answering.items() if took is not None]
        if len(required) < len(probes):
            log.warning("no answer to the probe press on shards %s before any fault: their probes are left out "
                        "of the recovery checks", sorted(set(probes) - set(required)))
        out["other_load"] = machine.other_load(machine.our_pids() | set(infra.postgres_pids()))
        cpu_marks = [("before faults", dict.fromkeys(tracker.seconds(), 0.0))]  # (phase, CPU seconds at its start)
        probing = {s: probes[s] for s in required}
        restarter = _Restarter()
        results = run_faults(options.faults,
                             lambda name: _fault(name, net, sim, brokers, backlog, probing, devices, options,
                                                 restarter),
                             options.settle_s, before_each=lambda name: cpu_marks.append((name, tracker.seconds())))
        report, ledger, providers = finish_city(sim, crew)
        sim = crew = None
        drain(list(brokers.values()), backlog, options.drain_quiet_s)
        cpu_total = tracker.stop()
        windows = Windows(run_start, [(r.name, r.injected_at) for r in results])
        log.info("accounting: every acknowledged sample and press against what was stored and processed")
        totals = account(infra.database_url, ledger, windows, run_start)
        out["faults"] = per_fault(results, windows, report)
        out["before_faults"] = before_faults(windows, report)
        out["totals"] = {**totals, "dead_letters": backlog.dead_letters()}
        out["cpu_seconds"] = {"total": cpu_total, "per_phase": _phases(cpu_marks, cpu_total)}
        out["simulator"] = {k: report["stats"].get(k) for k in (
            "samples_sent", "presses", "acks_sent", "connects", "disconnects", "connect_failures",
            "presses_unanswered", "errors_received")}
        out["providers"] = {k: providers["stats"].get(k) for k in (
            "offers_seen", "offers_accepted", "offers_declined", "offer_conflicts", "requests_arrived",
            "requests_completed", "provider_errors")}
        return out
    finally:
        if tracker is not None:
            tracker.stop()
        for child in (sim, crew):
            if child is not None:
                child.stop()
        for closable in (*probes.values(), *brokers.values(), backlog):
            if closable is not None:
                closable.close()
        net.stop()


def _fault(name: str, net: BenchNetwork, sim, brokers: dict[str, BrokerStats], backlog: LogStats,
           probes: dict[str, ProbeButton], devices: int, options: ScaleoutOptions,
           restarter: _Restarter) -> FaultResult:
    platform, infra = net.platform, net.infra
    assert platform is not None and infra.nats_cluster is not None
    baselines = [b.number(STORED) or 0.0 for b in brokers.values()]
    log.info("fault: %s (brokers hold %s messages before)", name, baselines)
    result = FaultResult(name, time.time(), "")
    started = time.monotonic()
    restart: _Restart | None = None  # what was SIGKILLed comes back after the down period, timed meanwhile
    if name == "nats-leader":
        cluster = infra.nats_cluster
        streams = [f"{os.environ['HOMECARE_LOG_NAMESPACE'].upper()}_{s}" for s in
                   ("TELEMETRY", "EVENTS", "STATE", "ACKS", "REQUESTS", "DEAD")]
        before = cluster.stream_leaders(streams)
        target = before.get(streams[1]) or next((n for n in before.values() if n), cluster.names[0])
        result.how = (f"nats-server {target} (leader of the {LEADER_OF} stream) SIGKILL, down {options.down_s}s, "
                      "started again on the same store")
        infra.kill_nats(target)
        result.injected_at = time.time()
        election = _watch_election(cluster, streams[1], target, started)
        restart = restarter.after(options.down_s, lambda: infra.start_nats(target), started)
        result.detail = {"killed_node": target, "leaders_before": before,
                         "led_streams": sorted(s for s, n in before.items() if n == target), "election": election}
    elif name in ("telemetry-replica", "dispatch-replica"):
        process = f"{name.split('-')[0]}-1"
        result.how = f"{process} SIGKILL (the other replica runs on), down {options.down_s}s, started again"
        platform.kill(process)
        restart = restarter.after(options.down_s, lambda: platform.start(process), started)
    elif name == "bridge":
        group = f"bridge-{options.bridge_shard}"
        result.how = (f"the bridge of shard {options.bridge_shard} (its gateway processes) SIGKILL, "
                      f"down {options.down_s}s, started again")
        platform.kill(group)
        restart = restarter.after(options.down_s, lambda: platform.start(group), started)
    elif name == "broker-restart":
        result.how = (f"mosquitto of shard {options.fault_shard} stopped (SIGTERM: persistence saved) and "
                      "started again on the same data")
        infra.stop_broker(shard=options.fault_shard)
        infra.start_broker(options.fault_shard)
    elif name == "broker-kill":
        result.how = (f"mosquitto of shard {options.fault_shard} SIGKILL (no save: what changed since the last "
                      "autosave is gone), started again on the same data")
        infra.stop_broker(kill=True, shard=options.fault_shard)
        infra.start_broker(options.fault_shard)
    else:
        raise ValueError(f"unknown fault {name}")
    result.recovery = _recover(net, sim, list(brokers.values()), baselines, backlog, probes, devices, started,
                               result.injected_at, options.recover_timeout_s,
                               restart.done if restart is not None else lambda: True)
    result.recovery_s = result.recovery.get("recovered_s")
    if restart is not None:
        restart.join(options.recover_timeout_s)
        result.detail.update(down_s=options.down_s, restarted_s=restart.done_s,
                             **({"restart_error": restart.error} if restart.error else {}))
    if name == "nats-leader":
        result.detail["leaders_after"] = infra.nats_cluster.stream_leaders(streams)
    return result


class _Restart:
    """Starts again what a fault stopped, after `down_s`, on the run's restarter thread: the
    recovery is timed from the fault on, so the press path coming back while it is still down
    is seen."""

    def __init__(self, down_s: float, start: Callable[[], Any], started: float):
        self.down_s, self.start, self.started = down_s, start, started
        self.done_s: float | None = None  # from `started`
        self.error: str | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        time.sleep(self.down_s)
        try:
            self.start()
            self.done_s = round(time.monotonic() - self.started, 1)
        except Exception as exc:  # the recovery then times out, and the result says why
            log.exception("starting again failed")
            self.error = repr(exc)
        finally:
            self.finished.set()

    def done(self) -> bool:
        return self.done_s is not None

    def join(self, timeout: float) -> None:
        self.finished.wait(timeout)


class _Restarter:
    """One thread for the whole run that starts things again. Not a thread per restart: a
    server started by the embedded starters gets SIGTERM when the thread that started it ends
    (PR_SET_PDEATHSIG follows the thread, not the process)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[_Restart] = queue.Queue()
        threading.Thread(target=self._work, name="restarter", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._jobs.get().run()

    def after(self, down_s: float, start: Callable[[], Any], started: float) -> _Restart:
        job = _Restart(down_s, start, started)
        self._jobs.put(job)
        return job


def _first_answer(probe: ProbeButton, tries: int = 3, timeout: float = 10.0) -> float | None:
    """Seconds until the first of a few presses was answered; None when none was."""
    for _ in range(tries):
        took = probe.press(timeout)
        if took is not None:
            return took
    return None


def _watch_election(cluster: NatsCluster, stream: str, old: str, started: float, timeout: float = 60.0) -> dict:
    """Poll, on a thread of its own, who leads `stream` until a node other than `old` does; the
    dict it returns gets `new_leader` and `elected_s` (from `started`) when that happens."""
    found: dict[str, Any] = {"stream": stream}

    def watch() -> None:
        while time.monotonic() - started < timeout:
            leader = cluster.stream_leaders([stream], timeout=1.0)[stream]
            if leader not in (None, old):
                found.update(new_leader=leader, elected_s=round(time.monotonic() - started, 1))
                return
            time.sleep(0.2)

    threading.Thread(target=watch, name="election-watch", daemon=True).start()
    return found


def _recover(net: BenchNetwork, sim, brokers: list[BrokerStats], baselines: list[float], backlog: LogStats,
             probes: dict[str, ProbeButton], devices: int, started: float, injected_at: float,
             timeout: float, restarted) -> dict[str, Any]:
    """Recovered, timed from the fault (the down period included): a probe press on each shard
    answered within 2 s (the press path; its first time is `probe_<shard>_answered_s`); what was
    killed started again, every process ready, every NATS node up, every device connected (as
    the simulator reported after the fault); each broker's backlog back to what it held before,
    and the log's consumers caught up."""
    platform, cluster = net.platform, net.infra.nats_cluster
    assert platform is not None and cluster is not None

    def connected() -> bool:
        row = sim.latest
        return row.get("ts", row.get("t", 0)) > injected_at + 1 and row.get("devices_connected", 0) >= devices

    return wait_recovered([
        lambda: {f"probe_{shard}_answered": probe.press(2.0) is not None for shard, probe in probes.items()},
        lambda: {"restarted": restarted(), "processes_ready": platform.ready("all"),
                 "nats_nodes_up": len(cluster.pids()) == len(cluster.names), "devices_connected": connected()},
        lambda: backlog_checks(brokers, baselines, backlog, max(100, devices // 5)),
    ], started, timeout)


def _cpu_groups(net: BenchNetwork, children) -> dict[str, Any]:
    """Component groups for the CPU tracker: each a function giving its processes now."""
    platform, infra = net.platform, net.infra
    assert platform is not None

    def procs(group: str):
        return lambda: [platform.procs[p].pid for p in platform.layout.members(group)
                        if p in platform.procs and platform.procs[p].poll() is None]

    def simulator(i: int):
        return lambda: [c.proc.pid for c in (children()[i],) if c is not None and c.alive()]

    return {
        "nats": infra.nats_pids, "mosquitto": infra.broker_pids, "bridges": procs("bridges"),
        "telemetry": procs("telemetry"), "dispatch": procs("dispatch"), "console": procs("console"),
        "postgresql": infra.postgres_pids, "simulator_devices": simulator(0), "simulator_providers": simulator(1),
    }


def _phases(marks: list[tuple[str, dict[str, float]]], total: dict[str, float]) -> list[dict[str, Any]]:
    """CPU seconds of each group in each phase: from its mark to the next (a fault's phase holds
    its recovery and the settle period after it; the last ends at `total`)."""
    ends = [m for _, m in marks[1:]] + [total]
    return [{"phase": name, **{g: round(end[g] - start.get(g, 0.0), 2) for g in end}}
            for (name, start), end in zip(marks, ends, strict=True)]


def _shape(net: BenchNetwork) -> dict[str, Any]:
    """What ran: the shards with their devices, the NATS nodes, the processes."""
    infra, platform = net.infra, net.platform
    assert infra.nats_cluster is not None and platform is not None
    return {
        "shards": {shard: {"url": infra.broker_urls[shard], "devices": len(net.placement[shard])}
                   for shard in infra.shards},
        "nats_nodes": infra.nats_cluster.names,
        "log_replicas": int(os.environ["HOMECARE_LOG_REPLICAS"]),
        "processes": {name: component for name, (component, _) in platform.layout.processes.items()},
    }


def _nats_version() -> str | None:
    import subprocess

    from launch.embedded import nats_server_binary

    binary = nats_server_binary()
    if not binary:
        return None
    return subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout.strip() or None
