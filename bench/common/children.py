"""Child processes that report progress as JSON lines on stdout (the simulator, the bare pipe)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class JsonLinesChild:
    """Runs a command; keeps every JSON line it prints (newest in `latest`)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path,
                 stdin_text: str | None = None, nice: int = 0):
        self.name = name
        self.rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=self._log,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL, text=True,
            preexec_fn=(lambda: _renice(nice)) if nice else None,
        )
        if stdin_text is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin_text)
            self.proc.stdin.close()
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self.rows.append(row)

    @property
    def latest(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.rows[-1]) if self.rows else {}

    def since(self, t: float) -> list[dict[str, Any]]:
        """Rows printed at or after wall time `t` (rows carry `ts` or `t`)."""
        with self._lock:
            return [r for r in self.rows if r.get("ts", r.get("t", 0)) >= t]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.latest
            if row and predicate(row):
                return row
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} waiting for {what}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: {what} not reached in {timeout}s (last: {self.latest})")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Ask it to finish, wait (kill after `timeout`), and return its exit status."""
        self.send(signal.SIGCONT)
        self.send(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        self._log.close()
        return code


def _renice(nice: int) -> None:
    """In the child before exec: a raised priority needs root; without it, run at the usual one."""
    try:
        os.nice(nice)
    except OSError:
        pass
