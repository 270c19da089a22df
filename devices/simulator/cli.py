"""`homecare simulate SCENARIO`: simulated homes and providers against a running network, with
live progress (a rich table on a terminal, JSON lines otherwise) until the duration or Ctrl-C."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from homecare.settings import Settings

from .api import ApiError
from .progress import Progress, json_line, table
from .roster import Roster
from .run import Simulation
from .scenario import Scenario
from .shards import Shard

log = logging.getLogger(__name__)


def run_simulate(settings: Settings, args: Any, password: str) -> int:
    """Run `homecare simulate` with parsed arguments; the exit status."""
    if not settings.mqtt_url:
        print("error: set HOMECARE_MQTT_URL to the network's broker, e.g. mqtt://127.0.0.1:1883", file=sys.stderr)
        return 2
    try:
        scenario = _scenario(args)
        shard = Shard.parse(args.shard) if getattr(args, "shard", None) else None
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    roster_path = Path(args.roster) if getattr(args, "roster", None) else None
    roster = Roster.load(roster_path) if roster_path and roster_path.exists() else None
    if shard and shard.count > 1 and roster is None:
        print("error: shards share a population: provision it first (--provision-only --roster FILE),"
              " then give every shard the same --roster FILE", file=sys.stderr)
        return 2
    providers = False if getattr(args, "no_providers", False) else None
    devices = not getattr(args, "no_devices", False)
    if not devices and providers is None:
        providers = True  # a crew-only process
    sim = Simulation(
        args.api_url, settings.mqtt_url, scenario, args.admin_user, password,
        roster=roster, shard=shard, ledger=bool(getattr(args, "ledger", None)), providers=providers,
        devices=devices,
    )
    if roster is None:
        try:
            roster = sim.provision()
        except (ApiError, TimeoutError, OSError) as exc:
            print(f"error: provisioning through {args.api_url} failed: {exc}", file=sys.stderr)
            return 1
        if roster_path:
            roster.save(roster_path)
    if getattr(args, "provision_only", False):
        print(json_line({"provisioned": True, "run_tag": roster.run_tag, "homes": len(roster.residents),
                         "devices": len(roster.devices()), "providers": len(roster.providers),
                         "roster": str(roster_path) if roster_path else None}))
        return 0
    return _run(sim, args, scenario)


def _scenario(args: Any) -> Scenario:
    scenario = Scenario.load(args.scenario) if args.scenario else Scenario.demo()
    changes = {k: getattr(args, k, None) for k in ("homes", "speed")}
    changes = {k: v for k, v in changes.items() if v is not None}
    return Scenario.model_validate({**scenario.model_dump(), **changes}) if changes else scenario


def _run(sim: Simulation, args: Any, scenario: Scenario) -> int:
    duration = args.duration if args.duration is not None else scenario.duration_s
    interval = getattr(args, "interval", None) or 2.0
    tty = sys.stdout.isatty()
    progress = Progress()
    title = f"homecare simulate: {scenario.name}"
    stop = threading.Event()
    with _stop_on_signals(stop):
        sim.start()
        started = time.monotonic()
        try:
            with _live(tty) as live:
                while True:
                    left = None if duration is None else duration - (time.monotonic() - started)
                    if stop.wait(interval if left is None else max(0.0, min(interval, left))):
                        break
                    row = progress.row(sim.stats(), sim.take_lag_max_ms())
                    _show(row, live, title)
                    if left is not None and left <= interval:
                        break
        finally:
            sim.stop()
    final = {**progress.row(sim.stats(), sim.take_lag_max_ms()), "final": True}
    if tty:
        from rich.console import Console

        Console().print(table(final, f"{title}: finished"))
    else:
        print(json_line(final), flush=True)
    _write_outputs(sim, args)
    return 0


def _show(row: dict[str, Any], live, title: str) -> None:
    if live is None:
        print(json_line(row), flush=True)
    else:
        live.update(table(row, title))


def _live(tty: bool):
    if not tty:
        return nullcontext(None)
    from rich.live import Live

    return Live(refresh_per_second=2, transient=True)


def _write_outputs(sim: Simulation, args: Any) -> None:
    report = getattr(args, "report", None)
    if report:
        stats = sim.stats()
        body = {
            "stats": stats,
            "press_to_ack_ms": sim.counters.series("press_to_ack_ms"),
            "press_sent_at": sim.counters.marks("press_sent_at"),
            "faults": sim.faults,
            "shard": str(sim.shard),
            "run_tag": sim.roster.run_tag if sim.roster else None,
        }
        Path(report).write_text(json.dumps(body, default=str), encoding="utf-8")
    ledger = getattr(args, "ledger", None)
    if ledger and sim.ledger is not None:
        sim.ledger.save(ledger)


@contextmanager
def _stop_on_signals(stop: threading.Event):
    """Ctrl-C and SIGTERM end the run cleanly (devices say goodbye) instead of killing it."""
    handlers = {}

    def handle(signum, frame) -> None:
        if stop.is_set():  # a second Ctrl-C: give up waiting
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
