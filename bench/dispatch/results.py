"""Numbers of a benchmark run: arrival times per policy, SLA compliance, the machine; a table."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta

from homecare.contract.models import Service
from services.dispatch.domain.policy import DispatchPolicy

from .product import Outcome
from .world import RequestSpec

EMERGENCY_TARGET = timedelta(minutes=45)


def minutes(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 60


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def arrivals_of(outcomes: dict[str, Outcome]) -> dict[str, datetime]:
    return {rid: o.arrived for rid, o in outcomes.items() if o.arrived is not None}


def summary(specs: list[RequestSpec], arrivals: dict[str, datetime]) -> dict:
    """Mean and spread of press-to-arrival, and the emergencies within 45 minutes."""
    waits = [minutes(arrivals[s.id], s.created) for s in specs if s.id in arrivals]
    emergencies = [s for s in specs if s.service is Service.EMERGENCY]
    in_time = [s for s in emergencies if s.id in arrivals and arrivals[s.id] - s.created <= EMERGENCY_TARGET]
    return {
        "requests": len(specs), "arrived": len(waits),
        "mean_arrival_min": round(statistics.fmean(waits), 2) if waits else None,
        "p50_arrival_min": _round(percentile(waits, 50)), "p90_arrival_min": _round(percentile(waits, 90)),
        "p99_arrival_min": _round(percentile(waits, 99)),
        "emergencies": len(emergencies), "emergencies_within_45min": len(in_time),
    }


def ratio(specs: list[RequestSpec], ours: dict[str, datetime], reference: dict[str, datetime]) -> float | None:
    """Mean press -> arrival of `ours` over that of `reference`, on the requests both served (the
    reference leaves a request nobody would say yes to unserved; ours gets it assigned by hand)."""
    both = [s for s in specs if s.id in ours and s.id in reference]
    if not both:
        return None
    mine = statistics.fmean(minutes(ours[s.id], s.created) for s in both)
    best = statistics.fmean(minutes(reference[s.id], s.created) for s in both)
    return round(mine / best, 3) if best > 0 else None


def pooled_bound(days: list[tuple[float, int]]) -> float:
    """A lower bound on the pooled mean from each day's (bound on its mean, requests): the days'
    bounds on their total waits add up."""
    served = sum(n for _, n in days)
    return sum(bound * n for bound, n in days) / served if served else 0.0


def sla_compliance(outcomes: dict[str, Outcome], policy: DispatchPolicy) -> dict[str, dict]:
    """Per service: the share assigned within the assignment target, arrived within the arrival
    target, and both (met). The acknowledgement is measured live (press -> ack is milliseconds)."""
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes.values():
        by[o.spec.service.value].append(o)
    out = {}
    for service, items in sorted(by.items()):
        p = policy.for_service(service)
        assigned = [o.assigned is not None and o.assigned - o.spec.created <= p.assign_within for o in items]
        arrived = [o.arrived is not None and o.arrived - o.spec.created <= p.arrive_within for o in items]
        out[service] = {
            "requests": len(items),
            "met": round(sum(a and b for a, b in zip(assigned, arrived, strict=True)) / len(items), 4),
            "assigned_within_target": round(sum(assigned) / len(items), 4),
            "arrived_within_target": round(sum(arrived) / len(items), 4),
            "mean_arrival_min": round(statistics.fmean(minutes(o.arrived, o.spec.created) for o in items), 2),
            "escalated": sum(o.escalated for o in items),
            "handed_back": sum(o.handed_back for o in items),
        }
    return out


def machine(database_url: str | None = None) -> dict:
    """What the numbers were measured on (bench.common.machine), and what else was busy meanwhile:
    this machine is shared, and the live latencies move with it."""
    try:
        from bench.common.machine import describe, other_load, our_pids
    except ImportError:  # psutil missing: the essentials from the standard library
        import os
        import platform

        return {"cpu_model": platform.processor() or "unknown", "cores": os.cpu_count(),
                "python": platform.python_version(), "os": platform.platform(terse=True)}
    described = describe(database_url)
    return {
        "cpu_model": described["cpu"], "cores": described["logical_cores"], **described,
        "other_load": other_load(our_pids(), sample_s=1.0),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def table(result: dict) -> str:
    """The headline numbers as a plain-text table."""
    target = result.get("target_ratio", 1.15)
    rows = [
        ("mean press -> arrival, ours (the product)", f"{result['mean_arrival_min']:.2f} min", ""),
        ("  offline reference (OR-Tools + exact search)", f"{result['reference_mean_arrival_min']:.2f} min",
         f"gap {result['reference_gap']:.1%} to its lower bound {result['reference_lower_bound_min']:.2f} min"),
        ("  nearest-available greedy", f"{result['greedy_mean_arrival_min']:.2f} min", ""),
        ("  per-slice hindsight heuristic", f"{result['slices_mean_arrival_min']:.2f} min", ""),
        ("optimality ratio (ours / reference)", f"{result['optimality_ratio']:.3f}", _verdict(
            result["optimality_ratio"] <= target, f"<= {target}")),
        ("  same, providers answering at once", f"{result['optimality_ratio_instant_answers']:.3f}", _verdict(
            result["optimality_ratio_instant_answers"] <= target, f"<= {target}")),
        ("  ours / the lower bound", f"{result['ratio_to_lower_bound']:.3f}", ""),
        ("  greedy / reference", f"{result['greedy_ratio']:.3f}", ""),
        ("emergencies attended within 45 min", f"{result['emergency_within_45min']:.3f}"
         f" ({result['ours']['emergencies_within_45min']}/{result['ours']['emergencies']})",
         _verdict(result["emergency_within_45min"] == 1.0, "= 1")),
    ]
    live = result.get("live")
    if live:
        paced = live["paced"]
        rows += [
            ("press -> first offer p50 / p99", f"{paced['p50_ms']:.0f} / {paced['p99_ms']:.0f} ms",
             _verdict(paced["p99_ms"] < 500, "p99 < 500 ms") + f"  ({paced['rate_per_s']:g} presses/s)"),
        ]
        bursts = (("small_burst", "at once"), ("burst", "at once"), ("burst_two_replicas", "at once, 2 replicas"))
        for key, label in bursts:
            b = live[key]
            rows.append((f"  burst of {b['presses']} {label}, p50 / p99", f"{b['p50_ms']:.0f} / {b['p99_ms']:.0f} ms",
                         _verdict(b["p99_ms"] < 500, "p99 < 500 ms")))
    lines = [f"{a:<46} {b:>18}   {c}" for a, b, c in rows]
    lines.append("")
    lines.append(f"{'SLA per service (ours)':<14} {'requests':>9} {'met':>7} {'assigned':>9} {'arrived':>8}"
                 f" {'mean min':>9}")
    for service, s in result["sla_compliance"].items():
        lines.append(f"{service:<14} {s['requests']:>9} {s['met']:>7.3f} {s['assigned_within_target']:>9.3f}"
                     f" {s['arrived_within_target']:>8.3f} {s['mean_arrival_min']:>9.2f}")
    return "\n".join(lines)


def _verdict(ok: bool, target: str) -> str:
    return f"{'met' if ok else 'MISSED'} ({target})"
