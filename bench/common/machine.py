"""What the benchmark ran on, and what else was using the machine meanwhile."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil


def describe(database_url: str | None = None) -> dict[str, Any]:
    """CPU, cores, memory, kernel, Python, mosquitto and PostgreSQL versions."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "python": sys.version.split()[0],
        "mosquitto": _mosquitto_version(),
        "postgresql": _postgres_version(database_url) if database_url else None,
        "open_files_limit": _nofile(),
    }


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mosquitto_version() -> str | None:
    exe = shutil.which("mosquitto")
    if not exe:
        return None
    out = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=5).stdout
    return out.splitlines()[0].strip() if out else None


def _postgres_version(database_url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return None


def _nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def other_load(ours: set[int], sample_s: float = 2.0, threshold: float = 5.0) -> dict[str, Any]:
    """Load average and the processes outside this benchmark using more than `threshold` % CPU."""
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.pid not in ours]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(sample_s)
    busy = []
    for p in procs:
        try:
            cpu = p.cpu_percent(None)
        except psutil.Error:
            continue
        if cpu >= threshold:
            cmd = " ".join(p.info.get("cmdline") or [p.info.get("name") or "?"])[:120]
            busy.append({"pid": p.pid, "cpu_percent": round(cpu, 1), "command": cmd})
    busy.sort(key=lambda b: -b["cpu_percent"])
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "busy_processes": busy[:10]}


def our_pids() -> set[int]:
    """This process and all its descendants."""
    me = psutil.Process()
    return {me.pid, *(c.pid for c in me.children(recursive=True))}


def server_pids() -> dict[str, list[int]]:
    """The PostgreSQL, mosquitto and NATS processes on this machine, by server: a benchmark's
    embedded ones (and the machine's own, idle ones beside them)."""
    groups = {"postgres": "postgresql", "mosquitto": "mosquitto", "nats-server": "nats"}
    out: dict[str, list[int]] = {group: [] for group in groups.values()}
    for proc in psutil.process_iter(["pid", "name"]):
        group = groups.get(proc.info["name"])
        if group is not None:
            out[group].append(proc.pid)
    return out


def process_cpu(pid: int) -> float | None:
    """A process's CPU seconds, with those of the children it has reaped (a PostgreSQL server's
    exited backends); None when it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system + t.children_user + t.children_system


def members_cpu(groups: dict[str, Callable[[], list[int]]]) -> Iterator[tuple[str, int, float]]:
    """(group, pid, CPU seconds) of every process each group has now; a group that cannot be
    listed right now (a restart under way) is skipped, as is a process that is gone."""
    for name, pids in groups.items():
        try:
            members = pids()
        except Exception:
            continue
        for pid in members:
            used = process_cpu(pid)
            if used is not None:
                yield name, pid, used


class CpuMeter:
    """CPU time used by named groups of processes between `start()` and `stop()`, in cores.

    A process counts with the children it has reaped (a PostgreSQL server's exited backends);
    live children are in their own groups or not counted."""

    def __init__(self) -> None:
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.seconds: dict[str, float] = {}  # CPU seconds of each group, after stop()

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        return sum(used for pid in pids if (used := process_cpu(pid)) is not None)

    def start(self, groups: dict[str, list[int]]) -> None:
        self._t0 = time.monotonic()
        self._start = {name: self._cpu(pids) for name, pids in groups.items()}

    def stop(self, groups: dict[str, list[int]]) -> dict[str, float]:
        span = max(time.monotonic() - self._t0, 1e-6)
        self.seconds = {name: round(self._cpu(pids) - self._start.get(name, 0.0), 2) for name, pids in groups.items()}
        return {name: round(seconds / span, 2) for name, seconds in self.seconds.items()}


class CpuSeries:
    """Cores used by each group of processes in each `interval_s` (a thread reads them): where the
    CPU went at a given moment of a window, to set beside the slow moments of a latency. `groups`
    maps a name to a function giving its processes now (a server's backends come and go); a
    process counts from its first reading."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], interval_s: float = 1.0):
        self._groups = groups
        self._interval = interval_s
        self._last: dict[int, float] = {}
        self._t0 = 0.0
        self._at = 0.0
        self.rows: list[dict[str, float]] = []  # {"t": seconds from start, group: cores, ...}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._t0 = self._at = time.monotonic()
        self._read()
        self._thread = threading.Thread(target=self._run, name="cpu-series", daemon=True)
        self._thread.start()

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.rows

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            used = self._read()
            span = max(now - self._at, 1e-6)
            self._at = now
            self.rows.append({"t": round(now - self._t0, 1),
                              **{name: round(seconds / span, 2) for name, seconds in used.items()}})

    def _read(self) -> dict[str, float]:
        """CPU seconds of each group since the last reading."""
        used = dict.fromkeys(self._groups, 0.0)
        for name, pid, now in members_cpu(self._groups):
            before = self._last.get(pid)
            self._last[pid] = now
            if before is not None:
                used[name] += max(now - before, 0.0)
        return used


class CpuTracker:
    """CPU seconds of named groups of processes whose members change (a killed process and the
    one started in its place): a thread reads every member's CPU time each `interval_s`; a
    process counts from its first reading after `start()` (from 0 if it was born since), up to
    its last (a SIGKILLed process's last interval is not seen). `groups` maps a name to a
    function giving its processes now."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], interval_s: float = 1.0):
        self._groups = groups
        self._interval = interval_s
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        self._read()
        self._started = True
        self._thread = threading.Thread(target=self._run, name="cpu-tracker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._read()

    def _read(self) -> None:
        for name, pid, used in members_cpu(self._groups):
            with self._lock:
                self._first.setdefault((name, pid), used if not self._started else 0.0)
                self._last[(name, pid)] = used

    def seconds(self) -> dict[str, float]:
        """CPU seconds of each group so far."""
        out = dict.fromkeys(self._groups, 0.0)
        with self._lock:
            for key, last in self._last.items():
                out[key[0]] += last - self._first[key]
        return {name: round(value, 2) for name, value in out.items()}

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._read()
        return self.seconds()
