"""The board's rules as plain Python: which requests it shows, in what order, and how urgent
their SLA clock looks. No I/O here; `board_data` feeds it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Waiting for someone first, then being served; en_route is optional in http-v1.
ACTIVE = ("escalated", "open", "offered", "assigned", "en_route", "arrived")
CLOSED = ("completed", "cancelled")
STATUSES = ACTIVE + CLOSED
SERVICES = ("emergency", "mobility", "meal", "bathing", "escort")

STATUS_LABELS = {
    "open": "Open", "offered": "Offered", "assigned": "Assigned", "en_route": "En route",
    "arrived": "Arrived", "completed": "Completed", "cancelled": "Cancelled",
    "escalated": "Escalated",
}
SERVICE_LABELS = {s: s.capitalize() for s in SERVICES}

_LOWEST_PRIORITY = 99  # an unknown priority sorts after every real one


def section_of(status: str) -> str | None:
    """`active`, `recent` (completed or cancelled) or None for a status the board ignores."""
    if status in ACTIVE:
        return "active"
    if status in CLOSED:
        return "recent"
    return None


def sort_key(request: Mapping[str, Any]) -> list[float]:
    """Comparable key: active requests by priority (1 first), urgency (higher first), then
    the longest waiting; closed ones most recently closed first. The page compares these keys
    as given, so the order is defined here only."""
    created = _epoch(request.get("created_at"))
    if section_of(request["status"]) == "recent":
        closed = request.get("completed_at") or request.get("cancelled_at")
        return [-(_epoch(closed) if closed else created)]
    priority = request.get("priority")
    urgency = request.get("urgency")
    return [
        float(priority) if isinstance(priority, int | float) else _LOWEST_PRIORITY,
        -float(urgency) if isinstance(urgency, int | float) else 0.0,
        created,
    ]


def sla_state(due: datetime | None, now: datetime, warn: timedelta) -> str:
    """`none`, `ok`, `warn` (less than `warn` left) or `late` (past due)."""
    if due is None:
        return "none"
    left = due - now
    if left <= timedelta(0):
        return "late"
    return "warn" if left <= warn else "ok"


def board_row(request: Mapping[str, Any], resident_name: str | None) -> dict[str, Any]:
    """One request as the board shows it, JSON-ready."""
    status = request["status"]
    section = section_of(status)
    return {
        "id": request["id"],
        "resident_id": request.get("resident_id"),
        "resident_name": resident_name,
        "service": request.get("service"),
        "service_label": SERVICE_LABELS.get(request.get("service"), request.get("service")),
        "priority": request.get("priority"),
        "urgency": request.get("urgency"),
        "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "created_at": _iso(request.get("created_at")),
        "provider_id": request.get("provider_id"),
        "provider_name": request.get("provider_name"),
        "sla_due_at": _iso(request.get("sla_due_at")) if section == "active" else None,
        "eta_minutes": request.get("eta_minutes"),
        # Flagged by the ladder or the clock: likely to miss its targets. Shown with when someone
        # is expected against when they are due, so the dispatcher sees by how much.
        "at_risk": section == "active" and request.get("sla_at_risk_at") is not None,
        "expected_arrival": _iso(request.get("expected_arrival")) if section == "active" else None,
        # A stuck button's presses joined it (homecare/buttons.py): its urgency did not rise.
        "stuck": _stuck(request),
        # Escalated: why the dispatchers were told (the ladder keeps offering meanwhile).
        "escalation_reason": request.get("escalation_reason") if status == "escalated" else None,
        # Help from another district: its own had nobody eligible (services/dispatch/README.md).
        "cross_district": bool(request.get("cross_district")),
        "district": request.get("district"),
        "section": section,
        # A planned visit (a care plan's, released onto a route): when it should start.
        "planned": request.get("source") == "plan",
        "window_start": _iso(request.get("window_start")),
        "window_end": _iso(request.get("window_end")),
        "alarm": is_alarm(request),
        # Changes with each re-announcement, so the board sounds again for one nobody took.
        "alarm_key": f"{request['id']}#{request.get('reannounced') or 0}",
        "reannounced": request.get("reannounced") or 0,
        "sort": sort_key(request),
    }


def _stuck(request: Mapping[str, Any]) -> str | None:
    """"button stuck: N presses in S s", or None."""
    presses, start, end = request.get("stuck_presses"), request.get("stuck_from"), request.get("stuck_to")
    if not presses:
        return None
    timed = isinstance(start, datetime) and isinstance(end, datetime)
    span = f" in {(end - start).total_seconds():.0f} s" if timed else ""
    return f"button stuck: {presses} presses{span}"


def is_alarm(request: Mapping[str, Any]) -> bool:
    """An emergency nobody has taken yet: the board flashes it, and beeps when it appears."""
    return request.get("service") == "emergency" and request["status"] in ("open", "offered", "escalated")


@dataclass(frozen=True)
class Board:
    """What the board shows: active requests, recently closed ones, and counts per status."""

    active: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    counts: dict[str, int]

    @property
    def active_total(self) -> int:
        """Active requests in all, which may be more than the board was allowed to load."""
        return max(len(self.active), sum(self.counts.get(s, 0) for s in ACTIVE))


def compose(
    requests: Iterable[Mapping[str, Any]],
    names: Mapping[str, str],
    counts: Mapping[str, int],
    recent_limit: int,
) -> Board:
    """The board from requests of any status; unknown statuses and duplicates are dropped."""
    rows: dict[str, dict[str, Any]] = {}
    for request in requests:
        if section_of(request["status"]) is not None:
            rows[request["id"]] = board_row(request, names.get(request.get("resident_id") or ""))
    ordered = sorted(rows.values(), key=lambda r: r["sort"])
    return Board(
        active=[r for r in ordered if r["section"] == "active"],
        recent=[r for r in ordered if r["section"] == "recent"][:recent_limit],
        counts=count_statuses(counts),
    )


def count_statuses(counts: Mapping[str, int]) -> dict[str, int]:
    """A count for every status the board knows, zero where none."""
    return {s: int(counts.get(s, 0)) for s in STATUSES}


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return _aware(value).timestamp()
    if isinstance(value, str):
        return _aware(datetime.fromisoformat(value)).timestamp()
    return 0.0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return _aware(value).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value
