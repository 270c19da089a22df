"""Live progress of a simulation: rates from successive counter snapshots, as a rich table or
as JSON lines (one object per interval, for a pipe or a benchmark reading it)."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.table import Table

RATES = {  # rate name -> counter it is the derivative of
    "messages_per_s": "messages_sent",
    "samples_per_s": "samples_sent",
    "presses_per_s": "presses",
    "acks_per_s": "acks_sent",
}


class Progress:
    """Turns `Simulation.stats()` snapshots into progress rows with rates per second."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._last: tuple[float, dict[str, Any]] | None = None

    def row(self, stats: dict[str, Any], lag_max_ms: float = 0.0) -> dict[str, Any]:
        """One progress row: the counters that matter, and rates since the previous row."""
        now = self._clock()
        rates = dict.fromkeys(RATES, 0.0)
        if self._last is not None:
            then, before = self._last
            span = max(now - then, 1e-6)
            rates = {name: round((stats[c] - before.get(c, 0)) / span, 1) for name, c in RATES.items()}
        self._last = (now, stats)
        latency = stats.get("press_to_ack_ms") or {}
        return {
            "ts": round(time.time(), 3),
            "elapsed_s": stats["elapsed_s"],
            "sim_time": stats["sim_time"],
            "devices_total": stats["devices_total"],
            "devices_connected": stats["devices_connected"],
            **rates,
            "messages_sent": stats["messages_sent"],
            "samples_sent": stats["samples_sent"],
            "presses": stats["presses"],
            "acks_sent": stats["acks_sent"],
            "errors_received": stats["errors_received"],
            "connect_failures": stats["connect_failures"],
            "commands_received": stats["commands_received"],
            "selftests_sent": stats["selftests_sent"],
            "offers_seen": stats["offers_seen"],
            "offers_accepted": stats["offers_accepted"],
            "requests_completed": stats["requests_completed"],
            "press_to_ack_p50_ms": latency.get("p50"),
            "press_to_ack_p99_ms": latency.get("p99"),
            "press_to_ack_count": latency.get("count", 0),
            "misbehaviour_sent": stats["misbehaviour_sent"],
            "power_cuts": stats["power_cuts"],
            "loop_lag_ms": stats["loop_lag_ms"],
            "loop_lag_max_ms": lag_max_ms,
        }


def json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), default=str)


def table(row: dict[str, Any], title: str) -> Table:
    """The row as a two-column rich table."""
    t = Table(title=title, show_header=False, expand=False, min_width=60)
    t.add_column("what", style="bold cyan")
    t.add_column("value")

    def add(name: str, value: Any) -> None:
        t.add_row(name, "-" if value is None else str(value))

    add("elapsed / simulated time", f"{row['elapsed_s']} s / {row['sim_time']}")
    add("devices connected", f"{row['devices_connected']} of {row['devices_total']}")
    add("messages / s", row["messages_per_s"])
    add("samples / s", f"{row['samples_per_s']}  (total {row['samples_sent']})")
    add("presses", f"{row['presses']}  ({row['presses_per_s']}/s)")
    add("press → answer p50 / p99", _ms(row["press_to_ack_p50_ms"], row["press_to_ack_p99_ms"]))
    add("acks sent", row["acks_sent"])
    add("errors received", row["errors_received"])
    add("connect failures", row["connect_failures"])
    add("commands by type", _pairs(row["commands_received"]))
    add("self-tests (trigger.result)", _pairs(row["selftests_sent"]))
    add("offers seen / accepted", f"{row['offers_seen']} / {row['offers_accepted']}")
    add("requests completed", row["requests_completed"])
    if row["misbehaviour_sent"]:
        add("misbehaving, sent", _pairs(row["misbehaviour_sent"]))
    if row["power_cuts"]:
        add("power cuts", row["power_cuts"])
    add("loop lag (avg / worst)", f"{row['loop_lag_ms']} ms / {row['loop_lag_max_ms']} ms")
    return t


def _ms(p50: float | None, p99: float | None) -> str:
    if p50 is None:
        return "-"
    return f"{p50:.0f} ms / {p99:.0f} ms"


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
