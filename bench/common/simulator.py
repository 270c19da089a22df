"""The device simulator as a subprocess (`homecare simulate`), so it has its own interpreter and
GIL; its JSON-lines progress is read live and its final report and ledger read at the end."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from devices.simulator import Scenario

from .children import JsonLinesChild
from .platform import ROOT

# The devices are not part of the system under test: on a shared machine they get the CPU first,
# so the load they offer does not shrink when the platform is busy (real devices have their own).
DEVICES_NICE = -10


class SimulatorProcess(JsonLinesChild):
    """`python -m launch.cli simulate` with a roster, a report and optionally a ledger."""

    def __init__(self, scenario: Scenario, work_dir: Path, roster: Path, broker_url: str, api_url: str,
                 admin: tuple[str, str], *, ledger: bool = False, name: str = "simulator",
                 extra: list[str] | None = None, nice: int = 0):
        work_dir.mkdir(parents=True, exist_ok=True)
        scenario_file = work_dir / f"{name}-scenario.yaml"
        scenario_file.write_text(yaml.safe_dump(json.loads(scenario.model_dump_json()), sort_keys=False))
        self.report_path = work_dir / f"{name}-report.json"
        self.ledger_path = work_dir / f"{name}-ledger.json" if ledger else None
        for stale in (self.report_path, self.ledger_path):
            if stale and stale.exists():
                stale.unlink()
        argv = [sys.executable, "-m", "launch.cli", "simulate", str(scenario_file), "--roster", str(roster),
                "--api-url", api_url, "--admin-user", admin[0], "--interval", "1",
                "--report", str(self.report_path), *(extra or [])]
        if self.ledger_path:
            argv += ["--ledger", str(self.ledger_path)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
        env.update({"HOMECARE_MQTT_URL": broker_url, "HOMECARE_LOG_JSON": "true",
                    "HOMECARE_LOG_LEVEL": os.environ.get("BENCH_SIMULATOR_LOG_LEVEL", "WARNING")})
        super().__init__(name, argv, env, work_dir / f"{name}.log", ROOT, stdin_text=admin[1] + "\n", nice=nice)

    def finish(self, timeout: float = 120.0) -> dict[str, Any]:
        """Ctrl-C (the devices power off cleanly), wait, and return the final report."""
        code = self.stop(signal.SIGINT, timeout)
        if code != 0 or not self.report_path.exists():
            raise RuntimeError(f"{self.name} ended with {code} and no report; see its log")
        return json.loads(self.report_path.read_text())

    def ledger(self) -> dict[str, Any]:
        if self.ledger_path is None or not self.ledger_path.exists():
            raise RuntimeError("no ledger was written")
        return json.loads(self.ledger_path.read_text())


def start_city(scenario: Scenario, work_dir: Path, roster: Path, broker_url: str, api_url: str,
               admin: tuple[str, str], *, ledger: bool = False) -> tuple[SimulatorProcess, SimulatorProcess]:
    """The devices (one process, ahead of the platform for the CPU) and the providers (another)."""
    devices = SimulatorProcess(scenario, work_dir, roster, broker_url, api_url, admin, ledger=ledger,
                               extra=["--no-providers"], nice=DEVICES_NICE)
    crew = SimulatorProcess(scenario, work_dir, roster, broker_url, api_url, admin, name="providers",
                            extra=["--no-devices"])
    return devices, crew


def finish_city(devices: SimulatorProcess, crew: SimulatorProcess
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Power the devices off, stop the providers; the devices' final report and ledger, and the
    providers' report."""
    report = devices.finish()
    ledger = devices.ledger()
    return report, ledger, crew.finish()
