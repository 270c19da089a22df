"""Counters of a running simulation, written by its threads and read by anyone."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict
from typing import Any

MAX_OBSERVATIONS = 500_000  # per series; later ones are dropped (and counted)


class SimStats:
    """Thread-safe counters, plain and by type (e.g. commands received per command type)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._typed: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._series: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
        self._marks: defaultdict[str, dict[str, float]] = defaultdict(dict)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def add_typed(self, group: str, type_: str, n: int = 1) -> None:
        with self._lock:
            self._typed[group][type_] += n

    def observe(self, series: str, value: float) -> None:
        """Record a measurement (e.g. a latency) with the wall time it was taken."""
        with self._lock:
            values = self._series[series]
            if len(values) < MAX_OBSERVATIONS:
                values.append((time.time(), value))
            else:
                self._counts[f"{series}_dropped"] += 1

    def mark(self, group: str, key: str, value: float) -> None:
        """Remember a value under a key (e.g. when each press was sent, by event id)."""
        with self._lock:
            marks = self._marks[group]
            if len(marks) < MAX_OBSERVATIONS:
                marks[key] = value

    def marks(self, group: str) -> dict[str, float]:
        with self._lock:
            return dict(self._marks[group])

    def series(self, name: str, since: float | None = None) -> list[tuple[float, float]]:
        """(wall time, value) pairs of a series, optionally only those taken at or after `since`."""
        with self._lock:
            values = list(self._series[name])
        return values if since is None else [v for v in values if v[0] >= since]

    def summary(self, name: str, since: float | None = None) -> dict[str, float | int | None]:
        """count, p50, p90, p99 and max of a series."""
        return summarize([v for _, v in self.series(name, since)])

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def typed(self, group: str) -> dict[str, int]:
        with self._lock:
            return dict(self._typed[group])

    def snapshot(self) -> dict[str, Any]:
        """Every counter; by-type groups as dicts."""
        with self._lock:
            out: dict[str, Any] = dict(self._counts)
            out.update({group: dict(counts) for group, counts in self._typed.items()})
            return out


# The counters a Simulation reports, present (as 0 or {}) even before anything happened.
DEVICE_COUNTERS = (
    "connects", "disconnects", "connect_failures", "messages_sent", "status_sent", "telemetry_batches_sent",
    "samples_sent", "presses", "cancels", "acks_sent", "errors_received", "invalid_commands", "unknown_commands",
    "power_cuts", "boots_after_power_cut", "silent_devices", "presses_unanswered",
)
PROVIDER_COUNTERS = (
    "offers_seen", "offers_accepted", "offers_declined", "offer_conflicts", "requests_arrived",
    "requests_completed", "request_conflicts", "provider_errors", "planned_visits_taken",
)
# selftests_sent: by trigger and result, e.g. "schedule.pass", "platform.fail".
TYPED_GROUPS = ("events_sent", "commands_received", "selftests_sent", "misbehaviour_sent", "errors_by_label")


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p99 and max, rounded to 0.1."""
    ordered = sorted(values)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "count": len(ordered), "p50": r(percentile(ordered, 50)), "p90": r(percentile(ordered, 90)),
        "p99": r(percentile(ordered, 99)), "max": r(ordered[-1] if ordered else None),
    }
