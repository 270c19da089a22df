"""Counters of a running simulation, written by its threads and read by anyone."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any


class SimStats:
    """Thread-safe counters, plain and by type (e.g. commands received per command type)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._typed: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def add_typed(self, group: str, type_: str, n: int = 1) -> None:
        with self._lock:
            self._typed[group][type_] += n

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
    "connects", "disconnects", "connect_failures", "status_sent", "telemetry_batches_sent",
    "samples_sent", "presses", "cancels", "acks_sent", "errors_received", "invalid_commands",
)
PROVIDER_COUNTERS = (
    "offers_seen", "offers_accepted", "offers_declined", "offer_conflicts", "requests_arrived",
    "requests_completed", "request_conflicts", "provider_errors",
)
TYPED_GROUPS = ("events_sent", "commands_received")
