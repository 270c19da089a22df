"""Press -> first offer, from dispatch's request detail (`GET /api/v1/requests/{id}`): the first
offer's creation time minus the moment the device sent the press (the simulator's record)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import httpx

from devices.simulator.stats import summarize


def press_to_offer(
    api_url: str, admin: tuple[str, str], t0: float, t1: float, press_sent: dict[str, float],
) -> dict[str, Any]:
    """Requests opened by a press between wall times t0 and t1: press -> first offer (ms).

    `press_sent`: when each press was sent, by event id (the simulator's report)."""
    with httpx.Client(base_url=api_url, timeout=30) as http:
        token = http.post("/api/v1/auth/token", data={"username": admin[0], "password": admin[1]})
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        listed = http.get("/api/v1/requests", params={"limit": 1000})
        listed.raise_for_status()
        latencies, without_offer, unmatched, considered = [], Counter(), 0, 0
        for row in listed.json():
            created = _ts(row["created_at"])
            if not t0 <= created <= t1 or row.get("source") not in (None, "button"):
                continue
            considered += 1
            detail = http.get(f"/api/v1/requests/{row['id']}").json()
            offers = [_ts(o["created_at"]) for o in detail.get("offers", [])]
            event_id = _created_event(detail)
            pressed = press_sent.get(event_id) if event_id else None
            if pressed is None:
                unmatched += 1  # pressed by a misbehaving device (not timed) or before the marks
                continue
            if not offers:  # by the status it has: why it got none (assigned by hand, no one free...)
                without_offer[detail["status"]] += 1
                continue
            latencies.append((min(offers) - pressed) * 1000)
    return {"requests": considered, "timed": len(latencies), "without_offer": sum(without_offer.values()),
            "without_offer_by_status": dict(without_offer),
            "unmatched": unmatched, **{f"press_to_offer_{k}_ms" if k != "count" else "count": v
                                       for k, v in summarize(latencies).items()}}


def _created_event(detail: dict[str, Any]) -> str | None:
    for entry in detail.get("timeline", []):
        if entry.get("kind") == "created":
            return (entry.get("detail") or {}).get("event_id")
    return None


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
