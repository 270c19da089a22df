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
from pathlib import Path

import httpx

from homecare.embedded import free_port

from .metrics import scrape

log = logging.getLogger(__name__)

COMPONENTS = ("gateway", "telemetry", "dispatch", "console")
ROOT = Path(__file__).resolve().parents[2]


class Platform:
    """gateway, telemetry, dispatch and console, started as `python -m homecare.cli <name>`."""

    def __init__(self, database_url: str, broker_url: str, log_dir: Path,
                 accounts: dict[str, tuple[str, str]] | None = None, instance: str = "bench",
                 env: dict[str, str] | None = None):
        self.database_url, self.broker_url = database_url, broker_url
        self.log_dir = log_dir
        self.accounts = accounts or {}
        self.instance = instance
        self.extra_env = env or {}
        self.secret_key = secrets.token_urlsafe(32)
        self.ports = {name: free_port() for name in COMPONENTS}
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def api_url(self) -> str:
        return self.url("console")

    def _env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
        env.update({
            "HOMECARE_DATABASE_URL": self.database_url, "HOMECARE_MQTT_URL": self.broker_url,
            "HOMECARE_INSTANCE": self.instance, "HOMECARE_HTTP_PORT": str(self.ports[name]),
            "HOMECARE_SECRET_KEY": self.secret_key, "HOMECARE_LOG_JSON": "true",
            "HOMECARE_LOG_LEVEL": "WARNING",
        })
        account = self.accounts.get(name)
        if account:
            env["HOMECARE_MQTT_SERVICE_USERNAME"], env["HOMECARE_MQTT_SERVICE_PASSWORD"] = account
        env.update(self.extra_env)
        return env

    def start(self, name: str, timeout: float = 90.0) -> float:
        """Start a component and wait until it is ready; seconds it took."""
        started = time.monotonic()
        self.spawn(name)
        self.wait_ready(name, timeout)
        return time.monotonic() - started

    def spawn(self, name: str) -> None:
        """Start a component's process (not waiting for it)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "homecare.cli", name, "--port", str(self.ports[name])],
                env=self._env(name), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )
        self.starts[name] += 1

    def start_all(self) -> None:
        # The first runs the migrations; the others then start side by side.
        self.start(COMPONENTS[0])
        for name in COMPONENTS[1:]:
            self.spawn(name)
        for name in COMPONENTS[1:]:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")
            if self.ready(name):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready within {timeout}s")

    def ready(self, name: str) -> bool:
        """/readyz says so. The console's /readyz also lists the broker checks of the components
        it builds but does not start (their routes only), which never pass in a process of its
        own; for the console only its own checks count."""
        try:
            response = httpx.get(f"{self.url(name)}/readyz", timeout=2)
        except httpx.HTTPError:
            return False
        if response.status_code == 200:
            return True
        if name != "console":
            return False
        try:
            checks = response.json().get("checks", {})
        except ValueError:
            return False
        own = {k: v for k, v in checks.items() if k.split(".")[0] not in COMPONENTS[:3]}
        return bool(own) and all(own.values())

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no flush; what it held in memory is gone."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def pause(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(f"{self.url(name)}/metrics")

    def stop(self, timeout: float = 20.0) -> None:
        for name in reversed(COMPONENTS):
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
