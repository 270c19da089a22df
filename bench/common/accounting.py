"""What the devices got the broker to accept (the simulator's ledger) against what the platform
stored and processed, read through the services' own query interfaces:

- samples: every accepted (bed, ts) must be in telemetry (`services.telemetry.queries.vitals`,
  raw resolution), once (more rows for it: stored twice);
- presses: every accepted `button.pressed` must appear exactly once in dispatch's request
  timelines (`services.dispatch.queries`: the `created` entry or a `pressed_again` entry carries
  the press's event id); missing is lost, twice is processed twice;
- requests: a button's first press for a service (in this run) that no request holds is a lost
  request.

Losses are attributed to the fault whose window holds the sample's or press's timestamp.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from devices.simulator.ledger import expand

PRE_MARGIN_S = 15.0  # a bed holds up to a report interval of samples before it sends them


@dataclass
class Window:
    name: str
    start: float  # wall time
    sent_samples: int = 0
    lost_samples: int = 0
    duplicate_samples: int = 0
    sent_presses: int = 0
    lost_events: int = 0
    duplicate_events: int = 0
    lost_requests: int = 0
    lost_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent_samples": self.sent_samples, "lost_samples": self.lost_samples,
            "duplicate_samples": self.duplicate_samples,
            "sent_presses": self.sent_presses, "lost_events": self.lost_events,
            "duplicate_events": self.duplicate_events, "lost_requests": self.lost_requests,
            "lost_examples": self.lost_examples[:10],
        }


class Windows:
    """Consecutive windows: each fault's begins PRE_MARGIN_S before it was injected."""

    def __init__(self, run_start: float, faults: list[tuple[str, float]]):
        self.items = [Window("before faults", run_start)]
        self.items += [Window(name, at - PRE_MARGIN_S) for name, at in faults]
        self._starts = [w.start for w in self.items]

    def at(self, wall: float) -> Window:
        return self.items[max(0, bisect.bisect_right(self._starts, wall) - 1)]


def account(database_url: str, ledger: dict[str, Any], windows: Windows, run_start: float) -> dict[str, Any]:
    """Fill the windows; totals over the run."""
    from services.dispatch import queries as dispatch
    from services.telemetry import queries as telemetry

    start = datetime.fromtimestamp(run_start - 120, UTC)
    end = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        for device, runs in ledger.get("samples", {}).items():
            sent = expand(runs)
            points = telemetry.vitals(conn, device, start, end, "raw", max_points=len(sent) * 2 + 1000)
            stored = Counter(round(p["ts"].timestamp() * 1000) for p in points)
            for ms in sent:
                window = windows.at(ms / 1000)
                window.sent_samples += 1
                if stored[ms] > 1:
                    window.duplicate_samples += stored[ms] - 1
                if ms not in stored:
                    window.lost_samples += 1
                    if len(window.lost_examples) < 10:
                        window.lost_examples.append(f"sample {device} {ms}")
        processed, opened = _processed_presses(conn, dispatch, start)
    first_seen: set[tuple[str, str]] = set()
    for device, events in ledger.get("events", {}).items():
        for event_id, type_, ts_ms, service in sorted(events, key=lambda e: e[2]):
            if type_ != "button.pressed":
                continue
            window = windows.at(ts_ms / 1000)
            window.sent_presses += 1
            count = processed[event_id]
            first = (device, service) not in first_seen
            first_seen.add((device, service))
            if count == 0:
                window.lost_events += 1
                if len(window.lost_examples) < 10:
                    window.lost_examples.append(f"press {device} {event_id}")
                if first and event_id not in opened:
                    window.lost_requests += 1
            elif count > 1:
                window.duplicate_events += count - 1
    totals = Window("total", run_start)
    for w in windows.items:
        for key in ("sent_samples", "lost_samples", "duplicate_samples", "sent_presses", "lost_events",
                    "duplicate_events", "lost_requests"):
            setattr(totals, key, getattr(totals, key) + getattr(w, key))
    return totals.as_dict()


def _processed_presses(conn: psycopg.Connection, dispatch, since: datetime) -> tuple[Counter[str], set[str]]:
    """How often each press (event id) appears in dispatch's timelines; the presses that opened one.

    Every request is looked at, not only those opened in this run: in a data folder an earlier
    run used, a press can join a request that run left open."""
    seen: Counter[str] = Counter()
    opened: set[str] = set()
    for row in dispatch.list_requests(conn, None, limit=1_000_000):
        for entry in dispatch.get_request(conn, row["id"])["timeline"]:
            event_id = (entry.get("detail") or {}).get("event_id")
            if event_id and entry["at"] >= since and entry["kind"] in ("created", "pressed_again"):
                seen[event_id] += 1
                if entry["kind"] == "created":
                    opened.add(event_id)
    return seen, opened
