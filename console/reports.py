"""The reports page's shapes: dispatch's SLA report rows pivoted per day, service and district,
and the geometry of its bar charts. Pure."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from .board import SERVICES

W, H, LEFT, BOTTOM, TOP = 640, 220, 36, 22, 10
GOOD, FAIR = 0.9, 0.75  # compliance at or above GOOD is green, above FAIR amber, else red


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def per_day(rows: Iterable[Mapping[str, Any]], days: Sequence[date]) -> dict[str, Any]:
    """Volume per day and service, and the share that met the SLA per day."""
    volume: dict[str, dict[str, int]] = {s: defaultdict(int) for s in SERVICES}
    met: dict[str, int] = defaultdict(int)
    judged: dict[str, int] = defaultdict(int)
    for row in rows:
        day, service = row["day"], row["service"]
        volume.setdefault(service, defaultdict(int))[day] += row["requests"]
        met[day] += row["met"]
        judged[day] += row["arrive_judged"]
    keys = [d.isoformat() for d in days]
    return {
        "days": keys,
        "volume": {s: [volume[s][d] for d in keys] for s in volume},
        "share": [round(met[d] / judged[d], 4) if judged[d] else None for d in keys],
        "judged": [judged[d] for d in keys],
    }


def totals(rows: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows summed per service or per district: counts and the share that met each target."""
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        bucket = sums[row[key] or "unknown"]
        for name in ("requests", "completed", "cancelled", "escalated", "active", "met",
                     "ack_judged", "ack_met", "assign_judged", "assign_met", "arrive_judged", "arrive_met"):
            bucket[name] += row.get(name) or 0
    out = []
    for name, s in sums.items():
        out.append({key: name, **s, "met_share": _share(s["met"], s["arrive_judged"]),
                    "ack_share": _share(s["ack_met"], s["ack_judged"]),
                    "assign_share": _share(s["assign_met"], s["assign_judged"]),
                    "arrive_share": _share(s["arrive_met"], s["arrive_judged"])})
    return sorted(out, key=lambda r: (-r["requests"], r[key]))


def tone(share: float | None) -> str:
    """`good`, `fair`, `poor` or `none` for a compliance share."""
    if share is None:
        return "none"
    return "good" if share >= GOOD else "fair" if share >= FAIR else "poor"


def volume_chart(days: Sequence[str], volume: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Stacked bars: requests per day, one colour per service."""
    n = max(len(days), 1)
    totals_ = [sum(volume[s][i] for s in volume) for i in range(len(days))]
    top = _nice(max(totals_, default=0))
    slot = (W - LEFT - 8) / n
    bars = []
    for i, day in enumerate(days):
        y = H - BOTTOM
        for service in volume:
            count = volume[service][i]
            if not count:
                continue
            h = (H - BOTTOM - TOP) * count / top
            y -= h
            bars.append({"x": round(LEFT + i * slot + slot * 0.15, 1), "y": round(y, 1), "w": round(slot * 0.7, 1),
                         "h": round(h, 1), "service": service, "count": count, "day": day})
    return {"width": W, "height": H, "bars": bars, "grid": _grid(top), "labels": _labels(days, slot),
            "total": sum(totals_), "left": LEFT}


def share_chart(days: Sequence[str], shares: Sequence[float | None]) -> dict[str, Any]:
    """Bars of the share of requests that met the SLA per day (0-100 %), coloured by tone."""
    n = max(len(days), 1)
    slot = (W - LEFT - 8) / n
    bars = []
    for i, (day, share) in enumerate(zip(days, shares, strict=True)):
        if share is None:
            continue
        h = (H - BOTTOM - TOP) * share
        bars.append({"x": round(LEFT + i * slot + slot * 0.15, 1), "y": round(H - BOTTOM - h, 1),
                     "w": round(slot * 0.7, 1), "h": round(h, 1), "tone": tone(share),
                     "label": f"{share * 100:.0f}%", "day": day})
    grid = [{"y": round(H - BOTTOM - (H - BOTTOM - TOP) * f, 1), "value": f"{int(f * 100)}%"}
            for f in (0, 0.25, 0.5, 0.75, 1)]
    target = round(H - BOTTOM - (H - BOTTOM - TOP) * GOOD, 1)
    return {"width": W, "height": H, "bars": bars, "grid": grid, "labels": _labels(days, slot),
            "target_y": target, "left": LEFT}


def _share(met: int, judged: int) -> float | None:
    return round(met / judged, 4) if judged else None


def _nice(value: int) -> int:
    """A round axis top at or above value (at least 4)."""
    if value <= 4:
        return 4
    step = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * step:
            return int(m * step)
    return int(10 * step)


def _grid(top: int) -> list[dict[str, Any]]:
    fractions = (0, 0.25, 0.5, 0.75, 1)
    return [{"y": round(H - BOTTOM - (H - BOTTOM - TOP) * f, 1), "value": round(top * f)} for f in fractions]


def _labels(days: Sequence[str], slot: float) -> list[dict[str, Any]]:
    every = max(1, math.ceil(len(days) / 14))  # at most some 14 labels
    return [{"x": round(LEFT + i * slot + slot / 2, 1), "text": d[5:]} for i, d in enumerate(days) if i % every == 0]
