"""What the fault benchmarks (bench.faults, bench.scaleout) share around a fault: its record, the
wait until the platform has recovered from it, the drain at the end, and the per-fault figures
(the accounting's window, recovery, press -> ack latency)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.simulator.stats import summarize

from .accounting import Windows
from .broker_stats import STORED, BrokerStats
from .log_stats import LogStats

log = logging.getLogger(__name__)

Checks = Callable[[], dict[str, bool]]


@dataclass
class FaultResult:
    name: str
    injected_at: float  # wall time
    how: str
    recovery_s: float | None = None
    recovery: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)  # what a fault found (the leader it killed, say)


def run_faults(names: tuple[str, ...], inject: Callable[[str], FaultResult], settle_s: float,
               before_each: Callable[[str], None] | None = None) -> list[FaultResult]:
    """Inject each fault in turn (`inject` also waits for the recovery), a settle period after
    each; a fault that cannot be carried out is recorded as failed and the others still run."""
    results: list[FaultResult] = []
    for name in names:
        if before_each is not None:
            before_each(name)
        try:
            results.append(inject(name))
        except Exception as exc:  # the other faults and the accounting still stand
            log.exception("fault %s could not be carried out", name)
            results.append(FaultResult(name, time.time(), "failed", recovery={"error": repr(exc)}))
        log.info("%s: recovered in %ss; settling %ss", name, results[-1].recovery_s, settle_s)
        time.sleep(settle_s)
    return results


def wait_recovered(stages: list[Checks], started: float, timeout: float, poll_s: float = 0.5) -> dict[str, Any]:
    """Poll the stages of checks until all pass: a stage's checks run only once every earlier
    stage's pass (the costly ones last). Returns when each check first passed (`<check>_s`, from
    `started`, a monotonic time) and `recovered_s`, or `recovered_s: None` after `timeout`."""
    marks: dict[str, float] = {}
    while time.monotonic() - started < timeout:
        elapsed = round(time.monotonic() - started, 1)
        passed = True
        for stage in stages:
            checks = stage()
            for key, ok in checks.items():
                if ok:
                    marks.setdefault(key + "_s", elapsed)
            if not all(checks.values()):
                passed = False
                break
        if passed:
            return {**marks, "recovered_s": elapsed}
        time.sleep(poll_s)
    return {**marks, "recovered_s": None, "timed_out_after_s": timeout}


def backlog_checks(brokers: list[BrokerStats], baselines: list[float], backlog: LogStats,
                   log_slack: int) -> dict[str, bool]:
    """Every broker holds no more than it did before the fault (give or take), and the log's
    consumers have caught up (at most `log_slack` messages owed: the steady flow in flight)."""
    stored = [b.number(STORED) for b in brokers]
    owed = backlog.backlog()
    return {
        "broker_backlog_drained": all(s is not None and s <= base * 1.1 + 100 for s, base in zip(stored, baselines,
                                                                                                strict=True)),
        "log_caught_up": owed is not None and owed <= log_slack,
    }


def drain(brokers: list[BrokerStats], backlog: LogStats, quiet_s: float, timeout: float = 120.0) -> None:
    """Let the platform finish what the brokers and the log still hold for it: their figures
    unchanged for `quiet_s`, nothing owed in the log."""
    deadline = time.monotonic() + timeout
    last, steady_since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = (tuple(b.number(STORED) for b in brokers), backlog.backlog())
        if state != last:
            last, steady_since = state, time.monotonic()
        elif time.monotonic() - steady_since > quiet_s and state[1] == 0:
            return
        time.sleep(1)


def per_fault(results: list[FaultResult], windows: Windows, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each fault's accounting window, how it was done, its recovery, and the press -> ack
    latencies the devices timed from its window's start to the next's."""
    series = report.get("press_to_ack_ms", [])
    out = []
    for result, window in zip(results, windows.items[1:], strict=True):
        nxt = windows.items[windows.items.index(window) + 1].start if window is not windows.items[-1] else 1e18
        latencies = [v for t, v in series if window.start <= t < nxt]
        out.append({"fault": result.name, "how": result.how, **result.detail, **window.as_dict(),
                    "recovery_s": result.recovery_s, "recovery": result.recovery,
                    "press_to_ack_ms": summarize(latencies)})
    return out


def before_faults(windows: Windows, report: dict[str, Any]) -> dict[str, Any]:
    """The window before the first fault, with its press -> ack latencies."""
    first = windows.items[0]
    end = windows.items[1].start if len(windows.items) > 1 else 1e18
    latencies = [v for t, v in report.get("press_to_ack_ms", []) if first.start <= t < end]
    return {**first.as_dict(), "press_to_ack_ms": summarize(latencies)}
