"""What each device got the broker to accept (PUBACK): the account a fault benchmark checks.

Only well-formed messages are entered: the platform owes nothing for a broken one. Sample
timestamps are kept as runs (first ms, step ms, count), so an hour of a bed is a few numbers.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from homecare.contract import parse_ts
from homecare.topics import DeviceChannel

from .messages import Outgoing


class Ledger:
    """Accepted samples and events per device; thread-safe, written on the loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, list[list[int]]] = {}  # device -> runs [first_ms, step_ms, count]
        # device -> (event_id, type, ts ms, detail): detail is a press's or a cancel's service, a
        # self-test's result, else ""
        self._events: dict[str, list[tuple[str, str, int, str]]] = {}

    def accepted(self, device_id: str, out: Outgoing) -> None:
        """The broker acknowledged `out` from `device_id`."""
        if not out.well_formed:
            return
        if out.channel is DeviceChannel.TELEMETRY:
            stamps = [_ms(s["ts"]) for s in out.payload["samples"]]
            with self._lock:
                runs = self._samples.setdefault(device_id, [])
                for ms in stamps:
                    _add_to_runs(runs, ms)
        elif out.channel is DeviceChannel.EVENTS:
            p = out.payload
            with self._lock:
                entry = (p["event_id"], p["type"], _ms(p["ts"]), p.get("service") or p.get("result") or "")
                self._events.setdefault(device_id, []).append(entry)

    def samples(self, device_id: str) -> list[int]:
        """Every accepted sample timestamp (ms) of a device, ascending."""
        with self._lock:
            runs = [list(r) for r in self._samples.get(device_id, [])]
        return expand(runs)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "samples": {d: [list(r) for r in runs] for d, runs in self._samples.items()},
                "events": {d: [list(e) for e in evs] for d, evs in self._events.items()},
            }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")


def load(path: str | Path) -> dict[str, Any]:
    """A saved ledger: `{"samples": {device: [[first_ms, step_ms, count], ...]},
    "events": {device: [[event_id, type, ts_ms, service or result], ...]}}`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def expand(runs: list[list[int]]) -> list[int]:
    """Runs back into the timestamps (ms), ascending and unique."""
    return sorted({first + i * step for first, step, count in runs for i in range(count)})


def _add_to_runs(runs: list[list[int]], ms: int) -> None:
    if runs:
        last = runs[-1]
        first, step, count = last
        end = first + step * (count - 1)
        if count == 1 and ms > first:
            last[1], last[2] = ms - first, 2
            return
        if ms - end == step:
            last[2] += 1
            return
    runs.append([ms, 0, 1])


def _ms(ts: Any) -> int:
    if isinstance(ts, int):
        return ts
    return round(parse_ts(ts).timestamp() * 1000)
