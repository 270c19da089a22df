"""The platform's components as subprocesses (`homecare <component>`), each on its own cores,
with the kill / restart / pause controls the benchmarks need."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from launch.embedded import free_port

from .metrics import scrape

log = logging.getLogger(__name__)

COMPONENTS = ("gateway", "telemetry", "dispatch", "console")
# The processes of each component: the gateway's lanes run apart (HOMECARE_GATEWAY_LANES), so a
# press is handled by an interpreter that is not busy parsing samples. Process -> extra settings.
PROCESSES: dict[str, dict[str, str]] = {
    "gateway": {"HOMECARE_GATEWAY_LANES": "bulk"},
    "gateway-control": {"HOMECARE_GATEWAY_LANES": "control"},
    "telemetry": {}, "dispatch": {}, "console": {},
}
GROUPS = {"gateway": ("gateway", "gateway-control")}  # a component's processes, where several
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Layout:
    """The processes a platform runs: each process's component and extra settings (in start
    order: the first runs the migrations alone), and named groups of processes (a component's
    lanes, a replica, a shard's bridge) that `kill`, `start` and `ready` take as one."""

    processes: dict[str, tuple[str, dict[str, str]]]
    groups: dict[str, tuple[str, ...]]

    def members(self, name: str) -> tuple[str, ...]:
        """The processes of a group (a process name stands for itself)."""
        return self.groups.get(name, (name,))

    def component(self, process: str) -> str:
        return self.processes[process][0]


def _component(process: str) -> str:
    return next((c for c, members in GROUPS.items() if process in members), process)


DEFAULT_LAYOUT = Layout({name: (_component(name), env) for name, env in PROCESSES.items()}, GROUPS)


class Platform:
    """gateway (two processes, one per lane), telemetry, dispatch and console, started as
    `python -m launch.cli <component>` (or the processes of another `layout`). `kill`, `start`,
    `ready` and `metrics` take a group (all its processes); `pause`, `resume` and `pid` take a
    process."""

    def __init__(self, database_url: str, broker_url: str, log_dir: Path,
                 accounts: dict[str, tuple[str, str]] | None = None, instance: str = "bench",
                 env: dict[str, str] | None = None, nats_url: str = "", layout: Layout | None = None):
        self.database_url, self.broker_url = database_url, broker_url
        self.nats_url = nats_url or os.environ.get("HOMECARE_NATS_URL", "")
        self.log_dir = log_dir
        self.accounts = accounts or {}
        self.instance = instance
        self.extra_env = env or {}
        self.layout = layout or DEFAULT_LAYOUT
        self.secret_key = secrets.token_urlsafe(32)
        self.ports = {name: free_port() for name in self.layout.processes}
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = dict.fromkeys(self.layout.processes, 0)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def api_url(self) -> str:
        return self.url("console")

    def _env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
        env.update({
            "HOMECARE_DATABASE_URL": self.database_url, "HOMECARE_MQTT_URL": self.broker_url,
            "HOMECARE_NATS_URL": self.nats_url,
            "HOMECARE_INSTANCE": self.instance, "HOMECARE_HTTP_PORT": str(self.ports[name]),
            "HOMECARE_SECRET_KEY": self.secret_key, "HOMECARE_LOG_JSON": "true",
            "HOMECARE_LOG_LEVEL": "WARNING",
        })
        if os.environ.get("HOMECARE_LOG_NAMESPACE"):  # a test's streams of its own
            env["HOMECARE_LOG_NAMESPACE"] = os.environ["HOMECARE_LOG_NAMESPACE"]
        account = self.accounts.get(self.layout.component(name))
        if account:
            env["HOMECARE_MQTT_SERVICE_USERNAME"], env["HOMECARE_MQTT_SERVICE_PASSWORD"] = account
        env.update(self.extra_env)
        env.update(self.layout.processes[name][1])
        return env

    def start(self, name: str, timeout: float = 90.0) -> float:
        """Start a component's processes and wait until they are ready; seconds it took."""
        started = time.monotonic()
        for process in self.layout.members(name):
            self.spawn(process)
        self.wait_ready(name, timeout)
        return time.monotonic() - started

    def spawn(self, name: str) -> None:
        """Start one process (not waiting for it)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "launch.cli", self.layout.component(name), "--port", str(self.ports[name])],
                env=self._env(name), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )
        self.starts[name] += 1

    def start_all(self) -> None:
        # The first process runs the migrations; the others then start side by side.
        first, *rest = self.layout.processes
        self.spawn(first)
        self._wait_ready([first], 90.0)
        for name in rest:
            self.spawn(name)
        self._wait_ready(rest, 90.0)

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        """Wait until a component's processes are all ready."""
        self._wait_ready(self.layout.members(name), timeout)

    def _wait_ready(self, processes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for process in processes:
            while True:
                proc = self.procs[process]
                if proc.poll() is not None:
                    raise RuntimeError(f"{process} exited with {proc.returncode}; "
                                       f"see {self.log_dir / (process + '.log')}")
                if self._ready(process):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{process} not ready within {timeout}s")
                time.sleep(0.2)

    def ready(self, name: str) -> bool:
        """Every process of the component says so on /readyz."""
        return all(self._ready(process) for process in self.layout.members(name))

    def _ready(self, process: str) -> bool:
        try:
            return httpx.get(f"{self.url(process)}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, name: str) -> None:
        """SIGKILL every process of the component: no shutdown, no flush; what they held in
        memory is gone."""
        for process in self.layout.members(name):
            proc = self.procs[process]
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def pause(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """A component's metrics, summed over its processes."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for process in self.layout.members(name):
            for key, value in scrape(f"{self.url(process)}/metrics").items():
                out[key] = out.get(key, 0.0) + value
        return out

    def stop(self, timeout: float = 20.0) -> None:
        for name in reversed(self.layout.processes):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %ss; killed", name, timeout)
                proc.kill()
                proc.wait()
