"""The repositories in memory: the same behaviour as the PostgreSQL ones (the contract tests in
tests/dispatch/test_repositories.py hold both to it), for rule tests without a database and for
the dispatch benchmark, which drives the product's use cases over simulated days.

What memory does not do: locks (one caller at a time; `lock=` and `try_lock` always succeed) and
rollback (a use case that fails half way leaves what it wrote; the use cases check before they
write, and the tests that need rollback run on PostgreSQL). `now()` in SQL is the clock given here,
so a simulated day's command deadlines follow simulated time."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from homecare.buttons import PressRun
from homecare.errors import Conflict, NotFound
from homecare.notify.model import Notice
from homecare.topics import DeviceChannel, device_topic

from ..domain.matching import Location
from ..domain.offers import Offer, OfferStatus
from ..domain.plans import CarePlan, Repeat
from ..domain.presses import ButtonRun
from ..domain.requests import ACTIVE, STAMPS, Change, ServiceRequest, Status, TimelineEntry
from ..domain.routes import PlanRun, RouteStop, not_started
from .providers import _ROUTE_AHEAD, ActiveJobRow, ProviderState

Clock = Callable[[], datetime]
_BUSY = frozenset({Status.ASSIGNED, Status.EN_ROUTE, Status.ARRIVED})  # requests that hold capacity
_WAITING = frozenset({Status.OPEN, Status.OFFERED})
_UNTAKEN = frozenset({Status.OPEN, Status.OFFERED, Status.ESCALATED})  # nobody has the request yet


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Request:
    """A request with the columns beside the domain's view."""

    request: ServiceRequest
    source_key: str | None = None
    note: str | None = None
    pressed_at: datetime | None = None
    acknowledged_at: datetime | None = None
    ack_shown_at: datetime | None = None
    retry_at: datetime | None = None
    sla_at_risk_at: datetime | None = None
    late_flagged_at: datetime | None = None
    stuck: PressRun | None = None  # the mark of a stuck button's presses
    reannounced: int = 0
    reannounced_at: datetime | None = None
    stamps: dict[str, datetime] = field(default_factory=dict)  # offered_at, arrived_at, ... as they happen


class MemoryTimeline:
    def __init__(self) -> None:
        self.by_request: dict[str, list[TimelineEntry]] = defaultdict(list)

    def append(self, conn: Any, request_id: str, entry: TimelineEntry) -> None:
        self.by_request[request_id].append(entry)

    def append_many(self, conn: Any, entries: list[tuple[str, TimelineEntry]]) -> None:
        for request_id, entry in entries:
            self.append(conn, request_id, entry)

    def entries(self, conn: Any, request_id: str) -> list[TimelineEntry]:
        return list(self.by_request.get(request_id, []))


class MemoryRequests:
    def __init__(self, timeline: MemoryTimeline) -> None:
        self.timeline = timeline
        self.rows: dict[str, _Request] = {}
        self.live: set[str] = set()  # active requests: what the timer's claims look at
        self.by_provider: dict[str, set[str]] = defaultdict(set)  # requests whose provider it is now
        self.by_source_key: dict[str, str] = {}
        self.pending: dict[str, str] = {}  # request -> its pending offer (shared with MemoryOffers)

    def _index(self, row: _Request, before: ServiceRequest | None) -> None:
        r = row.request
        if before is not None and before.provider_id and before.provider_id != r.provider_id:
            self.by_provider[before.provider_id].discard(r.id)
        if r.provider_id:
            self.by_provider[r.provider_id].add(r.id)
        (self.live.add if r.status in ACTIVE else self.live.discard)(r.id)

    def insert(
        self, conn: Any, request: ServiceRequest, entry: TimelineEntry, *, source_key: str | None = None,
        note: str | None = None, pressed_at: datetime | None = None,
    ) -> bool:
        if request.id in self.rows or (source_key is not None and source_key in self.by_source_key):
            return False
        if self.find_active(conn, request.resident_id, request.service.value) is not None:
            return False  # one active request per resident and service (a partial unique index)
        row = _Request(request, source_key, note, pressed_at)
        self.rows[request.id] = row
        if source_key is not None:
            self.by_source_key[source_key] = request.id
        self._index(row, None)
        self.timeline.append(conn, request.id, entry)
        return True

    def row(self, request_id: str) -> _Request:
        if request_id not in self.rows:
            raise NotFound(f"request {request_id} not found")
        return self.rows[request_id]

    def load(self, conn: Any, request_id: str, *, lock: bool = False) -> ServiceRequest:
        return self.row(request_id).request

    def find_active(self, conn: Any, resident_id: str, service: str, *, lock: bool = True) -> ServiceRequest | None:
        for rid in self.live:
            r = self.rows[rid].request
            if r.resident_id == resident_id and r.service.value == service:
                return r
        return None

    def find_by_source_key(self, conn: Any, source_key: str) -> ServiceRequest | None:
        rid = self.by_source_key.get(source_key)
        return self.rows[rid].request if rid else None

    def save(self, conn: Any, change: Change) -> ServiceRequest:
        row = self.rows.get(change.request.id)
        if row is None or row.request.status is not change.from_status:
            raise Conflict(f"request {change.request.id} changed meanwhile; it is no longer {change.from_status.value}")
        before, after = row.request, change.request
        # What the UPDATE writes: the lifecycle's columns; the rest stays as stored.
        row.request = replace(
            before, status=after.status, provider_id=after.provider_id, urgency=after.urgency,
            eta_minutes=after.eta_minutes, assigned_at=after.assigned_at, assign_due_at=after.assign_due_at,
            assign_warn_at=after.assign_warn_at, handed_back=after.handed_back,
        )
        if after.status is not Status.OPEN:
            row.retry_at = None
        if change.stamp and change.stamp != "assigned_at":
            row.stamps[change.stamp] = change.entry.at
        self._index(row, before)
        self.timeline.append(conn, after.id, change.entry)
        return after

    def mark_stuck(self, conn: Any, request_id: str, run: PressRun) -> None:
        if row := self.rows.get(request_id):
            row.stuck = run

    def set_acknowledged(self, conn: Any, request_id: str, at: datetime) -> None:
        if (row := self.rows.get(request_id)) and row.acknowledged_at is None:
            row.acknowledged_at = at

    def set_ack_shown(self, conn: Any, request_id: str, at: datetime) -> None:
        if (row := self.rows.get(request_id)) and row.ack_shown_at is None:
            row.ack_shown_at = at

    def retry_of(self, conn: Any, request_id: str) -> datetime | None:
        row = self.rows.get(request_id)
        return row.retry_at if row else None

    def set_retry(self, conn: Any, request_id: str, at: datetime | None) -> None:
        if row := self.rows.get(request_id):
            row.retry_at = at

    def flag_at_risk(self, conn: Any, request_id: str, at: datetime) -> bool:
        row = self.rows.get(request_id)
        if row is None or row.sla_at_risk_at is not None:
            return False
        row.sla_at_risk_at = at
        return True

    def flag_late(self, conn: Any, request_id: str, at: datetime) -> bool:
        row = self.rows.get(request_id)
        if row is None or row.late_flagged_at is not None:
            return False
        row.late_flagged_at = at
        row.sla_at_risk_at = row.sla_at_risk_at or at
        return True

    def _live(self, keep: Callable[[_Request], bool]) -> list[_Request]:
        return [row for rid in self.live if keep(row := self.rows[rid])]

    @staticmethod
    def _urgent_first(rows: list[_Request], limit: int) -> list[str]:
        rows.sort(key=lambda w: (w.request.priority, -w.request.urgency, w.request.created_at, w.request.id))
        return [w.request.id for w in rows[:limit]]

    def fresh(self, conn: Any, limit: int = 50) -> list[str]:
        return self._urgent_first(self._live(lambda w: w.request.status is Status.OPEN and w.retry_at is None), limit)

    def queued(
        self, conn: Any, limit: int = 50, skip: Iterable[str] = (), kinds_to_skip: Iterable[tuple[str, int]] = (),
    ) -> list[str]:
        skipped, kinds = set(skip), set(kinds_to_skip)
        return self._urgent_first(self._live(
            lambda w: (w.request.status is Status.OPEN
                       or (w.request.status is Status.ESCALATED and w.request.id not in self.pending))
            and w.request.id not in skipped
            and (w.request.service.value, w.request.priority) not in kinds
        ), limit)

    def overdue_waiting(self, conn: Any, now: datetime, limit: int = 50) -> list[str]:
        rows = self._live(lambda w: w.request.status in _WAITING and w.request.assign_due_at <= now)
        return [w.request.id for w in sorted(rows, key=lambda w: w.request.assign_due_at)[:limit]]

    def warn_due(self, conn: Any, now: datetime, limit: int = 50) -> list[str]:
        rows = self._live(lambda w: w.request.status in _WAITING and w.sla_at_risk_at is None
                          and w.request.assign_warn_at is not None and w.request.assign_warn_at <= now)
        return [w.request.id for w in sorted(rows, key=lambda w: w.request.assign_warn_at or now)[:limit]]

    def reannounce_due(
        self, conn: Any, now: datetime, every: timedelta, services: list[str], limit: int = 50,
    ) -> list[str]:
        def last(w: _Request) -> datetime | None:
            return w.reannounced_at or w.stamps.get("escalated_at")
        rows = self._live(lambda w: w.request.status in _UNTAKEN and w.request.service.value in services
                          and (at := last(w)) is not None and at <= now - every)
        return [w.request.id for w in sorted(rows, key=lambda w: last(w) or now)[:limit]]

    def mark_reannounced(self, conn: Any, request_id: str, at: datetime) -> int:
        row = self.rows.get(request_id)
        if row is None:
            return 0
        row.reannounced += 1
        row.reannounced_at = at
        return row.reannounced

    def maybe_late(self, conn: Any, now: datetime, limit: int = 50) -> list[str]:
        def late(w: _Request) -> bool:
            r = w.request
            if r.status not in (Status.ASSIGNED, Status.EN_ROUTE) or w.late_flagged_at is not None:
                return False
            expected = r.assigned_at + timedelta(minutes=r.eta_minutes or 0) if r.assigned_at else None
            return r.sla_due_at <= now or (expected is not None and expected > r.sla_due_at)
        rows = self._live(late)
        return [w.request.id for w in sorted(rows, key=lambda w: w.request.sla_due_at)[:limit]]


class MemoryOffers:
    def __init__(self, requests: MemoryRequests) -> None:
        self.requests = requests
        self.rows: dict[str, Offer] = {}
        self.scores: dict[str, tuple[float | None, dict[str, float] | None]] = {}
        self.pending: dict[str, str] = requests.pending  # request -> its pending offer
        # When a provider was last heard from (the providers' repository; wired by MemoryRepositories).
        self.seen_at: Callable[[str], datetime | None] = lambda provider_id: None
        self.by_request: dict[str, list[str]] = defaultdict(list)

    def insert(
        self, conn: Any, offer: Offer, score: float | None = None, parts: dict[str, float] | None = None,
    ) -> None:
        if offer.status is OfferStatus.PENDING and offer.request_id in self.pending:
            raise Conflict(f"request {offer.request_id} already has a pending offer")
        self.rows[offer.id] = offer
        self.scores[offer.id] = (score, parts)
        self.by_request[offer.request_id].append(offer.id)
        if offer.status is OfferStatus.PENDING:
            self.pending[offer.request_id] = offer.id

    def load(self, conn: Any, offer_id: str, *, lock: bool = False) -> Offer:
        if offer_id not in self.rows:
            raise NotFound(f"offer {offer_id} not found")
        return self.rows[offer_id]

    def pending_for(self, conn: Any, request_id: str, *, lock: bool = True) -> Offer | None:
        offer_id = self.pending.get(request_id)
        return self.rows[offer_id] if offer_id else None

    def save_answer(self, conn: Any, offer: Offer) -> None:
        stored = self.rows.get(offer.id)
        if stored is None or stored.status is not OfferStatus.PENDING:
            raise Conflict(f"offer {offer.id} was answered meanwhile")
        self.rows[offer.id] = replace(stored, status=offer.status, answered_at=offer.answered_at)
        if offer.status is not OfferStatus.PENDING:
            self.pending.pop(stored.request_id, None)

    def history(self, conn: Any, request_id: str) -> tuple[int, frozenset[str]]:
        failed = [o for oid in self.by_request.get(request_id, [])
                  if (o := self.rows[oid]).status in (OfferStatus.DECLINED, OfferStatus.EXPIRED)]
        return len(failed), frozenset(o.provider_id for o in failed)

    def due(self, conn: Any, now: datetime, limit: int = 50) -> list[tuple[str, str]]:
        due = sorted((o for oid in self.pending.values() if (o := self.rows[oid]).deadline_at <= now),
                     key=lambda o: o.deadline_at)
        return [(o.id, o.request_id) for o in due[:limit]]

    def to_unreachable(self, conn: Any, seen_before: datetime, limit: int = 50) -> list[tuple[str, str]]:
        rows = [o for oid in self.pending.values() if (o := self.rows[oid])
                and ((seen := self.seen_at(o.provider_id)) is None or seen < seen_before)]
        return [(o.id, o.request_id) for o in sorted(rows, key=lambda o: o.created_at)[:limit]]

    def pending_of(self, provider_id: str) -> list[Offer]:
        return [o for oid in self.pending.values() if (o := self.rows[oid]).provider_id == provider_id]


class MemoryShifts:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def add(self, conn: Any, provider_id: str, starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
        shift_id = f"s-{next(self._ids)}"
        row: dict[str, Any] = {"id": shift_id, "provider_id": provider_id, "starts_at": starts_at, "ends_at": ends_at,
                               "started_at": None, "ended_at": None}
        self.rows[shift_id] = row
        return dict(row)

    def to_start(self, conn: Any, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        due = [s for s in self.rows.values() if s["started_at"] is None and s["starts_at"] <= now < s["ends_at"]]
        return [dict(s) for s in sorted(due, key=lambda s: s["starts_at"])[:limit]]

    def to_end(self, conn: Any, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        due = [s for s in self.rows.values() if s["ended_at"] is None and s["ends_at"] <= now]
        return [dict(s) for s in sorted(due, key=lambda s: s["ends_at"])[:limit]]

    def mark(self, conn: Any, shift_id: str, column: str, at: datetime) -> None:
        if column not in ("started_at", "ended_at"):
            raise ValueError(column)
        if shift_id in self.rows:
            self.rows[shift_id][column] = at

    def covering(self, conn: Any, provider_id: str, now: datetime, other_than: str) -> bool:
        return any(s["provider_id"] == provider_id and s["id"] != other_than and s["starts_at"] <= now < s["ends_at"]
                   for s in self.rows.values())

    def overlapping(self, conn: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
        rows = [s for s in self.rows.values() if s["starts_at"] < end and s["ends_at"] > start]
        return [dict(s) for s in sorted(rows, key=lambda s: (s["provider_id"], s["starts_at"], s["id"]))]

    def ends_of(self, provider_id: str, now: datetime) -> datetime | None:
        """The end of the provider's shift that covers `now` (the earliest, if several do)."""
        ends = [s["ends_at"] for s in self.rows.values()
                if s["provider_id"] == provider_id and s["starts_at"] <= now < s["ends_at"]]
        return min(ends) if ends else None


class MemoryProviders:
    def __init__(self, requests: MemoryRequests, offers: MemoryOffers, shifts: MemoryShifts, clock: Clock) -> None:
        self.requests, self.offers, self.shifts, self.clock = requests, offers, shifts, clock
        self.rows: dict[str, dict[str, Any]] = {}
        # Its route's planned visits not yet released (the plans' repository; wired by MemoryRepositories).
        self.planned: Callable[[str, datetime], list[ActiveJobRow]] = lambda provider_id, now: []

    def insert(
        self, conn: Any, provider_id: str, name: str, services: list[str], location: Location, capacity: int,
        on_shift: bool = True, districts: list[str] | None = None,
    ) -> dict[str, Any]:
        if provider_id in self.rows:
            raise Conflict(f"provider {provider_id} exists")
        self.rows[provider_id] = {"id": provider_id, "name": name, "services": list(services), "lat": location.lat,
                                  "lon": location.lon, "capacity": capacity, "on_shift": on_shift, "location_at": None,
                                  "last_seen_at": self.clock() if on_shift else None, "skills": [],
                                  "districts": sorted(set(districts or ()))}
        return dict(self.rows[provider_id])

    def set_districts(self, conn: Any, provider_id: str, districts: list[str]) -> dict[str, Any]:
        row = self._row(provider_id)
        row["districts"] = sorted(set(districts))
        return dict(row)

    def _row(self, provider_id: str) -> dict[str, Any]:
        if provider_id not in self.rows:
            raise NotFound(f"provider {provider_id} not found")
        return self.rows[provider_id]

    def get(self, conn: Any, provider_id: str, *, lock: bool = False) -> dict[str, Any]:
        return dict(self._row(provider_id))

    def set_on_shift(self, conn: Any, provider_id: str, on_shift: bool, at: datetime | None = None) -> dict[str, Any]:
        row = self._row(provider_id)
        if on_shift and not row["on_shift"]:
            self._seen(row, at or self.clock())
        row["on_shift"] = on_shift
        return self.get(conn, provider_id)

    @staticmethod
    def _seen(row: dict[str, Any], at: datetime) -> None:
        row["last_seen_at"] = at if row["last_seen_at"] is None else max(row["last_seen_at"], at)

    def seen(self, conn: Any, provider_id: str, at: datetime) -> dict[str, Any]:
        self._seen(self._row(provider_id), at)
        return self.get(conn, provider_id)

    def last_seen(self, provider_id: str) -> datetime | None:
        row = self.rows.get(provider_id)
        return row["last_seen_at"] if row else None

    def set_location(self, conn: Any, provider_id: str, location: Location, at: datetime) -> dict[str, Any]:
        self._row(provider_id).update(lat=location.lat, lon=location.lon, location_at=at)
        return self.get(conn, provider_id)

    def set_skills(self, conn: Any, provider_id: str, skills: list[str]) -> dict[str, Any]:
        self._row(provider_id)["skills"] = sorted(set(skills))
        return self.get(conn, provider_id)

    def roster(self, conn: Any) -> list[dict[str, Any]]:
        return [dict(self.rows[pid]) for pid in sorted(self.rows)]

    def try_lock(self, conn: Any, provider_id: str, wait_ms: int = 150) -> bool:
        return True

    def _busy(self, provider_id: str) -> list[ServiceRequest]:
        """Its requests with it: held work and its route's planned visits not yet started."""
        rows = self.requests.rows
        return sorted((r for rid in self.requests.by_provider.get(provider_id, ())
                       if (r := rows[rid].request).status in _BUSY), key=lambda r: r.id)

    def _held(self, provider_id: str) -> list[ServiceRequest]:
        """The requests holding its capacity (a planned visit not yet started does not)."""
        return [r for r in self._busy(provider_id) if not not_started(r)]

    def load_counts(self, conn: Any, provider_id: str) -> tuple[int, int]:
        return len(self._held(provider_id)), len(self.offers.pending_of(provider_id))

    def active_count(self, conn: Any, provider_id: str) -> int:
        return len(self._held(provider_id))

    def _job(self, r: ServiceRequest) -> ActiveJobRow:
        loc = r.location
        return ActiveJobRow(r.id, r.status.value, r.service.value, r.priority, loc.lat if loc else None,
                            loc.lon if loc else None, r.assigned_at, r.eta_minutes,
                            self.requests.rows[r.id].stamps.get(STAMPS[Status.ARRIVED]), True, not_started(r),
                            r.window_start, r.window_end, r.planned_minutes, r.resident_id, r.planned_start)

    def active_jobs(self, conn: Any, provider_id: str) -> list[ActiveJobRow]:
        return [self._job(r) for r in self._held(provider_id)]

    def states(
        self, conn: Any, service: str | None, resident_id: str, recent_since: datetime, now: datetime,
        *, on_shift_only: bool = True, provider_ids: list[str] | None = None,
    ) -> list[ProviderState]:
        wanted = set(provider_ids) if provider_ids is not None else None
        out = []
        for pid in sorted(self.rows):
            row = self.rows[pid]
            if ((service is not None and service not in row["services"]) or (on_shift_only and not row["on_shift"])
                    or (wanted is not None and pid not in wanted)):
                continue
            pending = self.offers.pending_of(pid)
            jobs = [self._job(r) for r in self._busy(pid)] + [
                ActiveJobRow(r.id, Status.ASSIGNED.value, r.service.value, r.priority,
                             r.location.lat if r.location else None, r.location.lon if r.location else None,
                             o.created_at, o.eta_minutes, None, held=False)
                for o in pending for r in [self.requests.rows[o.request_id].request]
            ]
            mine = [self.requests.rows[rid].request for rid in self.requests.by_provider.get(pid, ())]
            jobs += self.planned(pid, now)
            out.append(ProviderState(
                dict(row), sorted(jobs, key=lambda j: j.request_id), len(pending),
                sum(1 for r in mine if r.resident_id == resident_id and r.status is Status.COMPLETED),
                sum(1 for r in mine if r.assigned_at is not None and r.assigned_at >= recent_since),
                self.shifts.ends_of(pid, now),
            ))
        return out


class MemoryEvents:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.processed: set[tuple[str, str]] = set()
        self.held: dict[tuple[str, str], tuple[str, datetime, datetime]] = {}  # -> (service, ts, held_at)
        self.runs: dict[tuple[str, str], ButtonRun] = {}

    def first_time(self, conn: Any, device_id: str, event_id: str) -> bool:
        if (device_id, event_id) in self.processed:
            return False
        self.processed.add((device_id, event_id))
        return True

    def serialize(self, conn: Any, resident_id: str, service: str) -> None:
        """One caller at a time in memory: nothing to wait for."""

    def hold_cancel(self, conn: Any, device_id: str, event_id: str, service: str, ts: datetime) -> None:
        old = self.clock() - timedelta(days=1)
        for key in [k for k, (_, _, held_at) in self.held.items() if held_at < old]:
            del self.held[key]
        self.held.setdefault((device_id, event_id), (service, ts, self.clock()))

    def take_cancel(
        self, conn: Any, device_id: str, service: str, pressed_at: datetime, within: timedelta,
    ) -> str | None:
        fits = sorted((ts, event_id) for (dev, event_id), (svc, ts, _) in self.held.items()
                      if dev == device_id and svc == service and pressed_at <= ts <= pressed_at + within)
        if not fits:
            return None
        event_id = fits[0][1]
        del self.held[(device_id, event_id)]
        return event_id

    def press_run(self, conn: Any, device_id: str, service: str) -> ButtonRun | None:
        return self.runs.get((device_id, service))

    def save_press_run(self, conn: Any, device_id: str, service: str, value: ButtonRun) -> None:
        self.runs[(device_id, service)] = value


class MemoryOutbox:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[int, dict[str, Any]] = {}
        self.open: set[int] = set()  # neither acknowledged nor expired
        self._ids = itertools.count(1)
        self.wakes = 0

    def put(
        self, conn: Any, device_id: str, command: dict[str, Any], *, kind: str, deadline_s: int,
        request_id: str | None = None, origin_at: datetime | None = None,
    ) -> int:
        now = self.clock()
        row_id = next(self._ids)
        self.rows[row_id] = {
            "id": row_id, "topic": device_topic(device_id, DeviceChannel.COMMANDS), "device_id": device_id,
            "request_id": request_id, "kind": kind, "payload": dict(command), "origin_at": origin_at,
            "command_id": command["command_id"], "created_at": now, "deadline_at": now + timedelta(seconds=deadline_s),
            "delivery": None, "delivery_at": None, "sent_at": None, "acked_at": None,
        }
        self.open.add(row_id)
        self.wake(conn)
        return row_id

    def wake(self, conn: Any) -> None:
        self.wakes += 1  # nobody publishes from memory; counted for the tests

    def mark_sent(self, conn: Any, ids: list[int]) -> list[dict[str, Any]]:
        now, out = self.clock(), []
        for row_id in ids:
            row = self.rows.get(row_id)
            if row is None or row["sent_at"] is not None:
                continue
            row["sent_at"] = now
            row["delivery"] = row["delivery"] or "sent"
            row["delivery_at"] = row["delivery_at"] or now
            out.append({k: row[k] for k in ("id", "request_id", "kind", "command_id", "device_id", "delivery",
                                            "delivery_at")})
        return out

    @staticmethod
    def _head(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in ("id", "request_id", "kind", "command_id", "device_id", "payload")}

    def acknowledge(
        self, conn: Any, device_id: str, command_id: str, at: datetime,
    ) -> tuple[dict[str, Any] | None, bool]:
        row = next((r for r in self.rows.values() if r["command_id"] == command_id and r["device_id"] == device_id),
                   None)
        if row is None:
            return None, False
        if row["delivery"] == "acknowledged":
            return self._head(row), False
        now = self.clock()
        row.update(delivery="acknowledged", delivery_at=now, acked_at=at, sent_at=row["sent_at"] or now)
        self.open.discard(row["id"])
        return self._head(row), True

    def overdue(self, conn: Any, now: datetime, limit: int = 1) -> list[int]:
        due = sorted((r for rid in self.open if (r := self.rows[rid])["deadline_at"] <= now),
                     key=lambda r: r["deadline_at"])
        return [r["id"] for r in due[:limit]]

    def expire(self, conn: Any, outbox_id: int, now: datetime) -> dict[str, Any] | None:
        row = self.rows.get(outbox_id)
        if row is None or row["delivery"] not in (None, "sent"):
            return None
        row.update(delivery="expired", delivery_at=now)
        self.open.discard(outbox_id)
        return {k: row[k] for k in ("id", "request_id", "kind", "command_id", "device_id", "sent_at")}


class MemoryDevices:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def record_states(self, conn: Any, states: list[tuple[str, str, str, datetime]]) -> set[str]:
        first: set[str] = set()
        for device_id, shard, state, at in sorted(states, key=lambda s: s[3]):
            row = self.rows.get(device_id)
            if row is None:
                self.rows[device_id] = {"shard": shard, "state": state, "state_at": at, "first_seen_at": at}
                first.add(device_id)
            elif row["state_at"] <= at:
                row.update(shard=shard, state=state, state_at=at, first_seen_at=min(row["first_seen_at"], at))
            else:
                row["first_seen_at"] = min(row["first_seen_at"], at)
        return first


class MemoryNotices:
    """The notice outbox in memory: what was queued, in order (the sender runs on PostgreSQL)."""

    def __init__(self) -> None:
        self.queued: list[Notice] = []

    def put(self, conn: Any, notice: Notice) -> None:
        self.queued.append(notice)


class MemoryResidents:
    def __init__(self) -> None:
        self.homes: dict[str, tuple[Location | None, str | None]] = {}

    def add(self, resident_id: str, location: Location | None, district: str | None = None) -> None:
        self.homes[resident_id] = (location, district)

    def home(self, conn: Any, resident_id: str) -> tuple[Location | None, str | None]:
        return self.homes.get(resident_id, (None, None))

    def check(self, conn: Any, resident_id: str) -> None:
        if resident_id not in self.homes:
            raise NotFound(f"resident {resident_id} not found")


class MemoryPlans:
    """Care plans, planned visits and planning runs in memory."""

    def __init__(self, requests: MemoryRequests) -> None:
        self.requests = requests
        self.plans: dict[str, CarePlan] = {}
        self.order: dict[str, int] = {}  # creation order (the created_at of the table)
        self.visits: dict[str, RouteStop] = {}
        self.missed_at: dict[str, datetime] = {}
        self.run_rows: list[PlanRun] = []

    def add(self, conn: Any, plan: CarePlan) -> None:
        if plan.id in self.plans:
            raise Conflict(f"care plan {plan.id} exists")
        self.plans[plan.id] = plan
        self.order[plan.id] = len(self.order)

    def update(self, conn: Any, plan: CarePlan) -> None:
        if plan.id not in self.plans:
            raise NotFound(f"care plan {plan.id} not found")
        self.plans[plan.id] = plan

    def get(self, conn: Any, plan_id: str, *, lock: bool = False) -> CarePlan:
        if plan_id not in self.plans:
            raise NotFound(f"care plan {plan_id} not found")
        return self.plans[plan_id]

    def of_resident(self, conn: Any, resident_id: str) -> list[CarePlan]:
        mine = [p for p in self.plans.values() if p.resident_id == resident_id]
        return sorted(mine, key=lambda p: (not p.active, self.order[p.id], p.id))

    def on_day(self, conn: Any, day: date) -> list[CarePlan]:
        return sorted((p for p in self.plans.values() if p.active and p.recurrence.starts_on <= day
                       and (p.recurrence.ends_on is None or p.recurrence.ends_on >= day)
                       and (p.recurrence.repeat is not Repeat.ONCE or p.recurrence.starts_on == day)),
                      key=lambda p: p.id)

    def lock_day(self, conn: Any, day: date) -> None:
        """One caller at a time in memory."""

    def share_day(self, conn: Any, day: date) -> bool:
        return True

    def stops(self, conn: Any, day: date, provider_id: str | None = None) -> list[RouteStop]:
        rows = [s for s in self.visits.values()
                if s.day == day and (provider_id is None or s.provider_id == provider_id)]
        return sorted(rows, key=lambda s: (s.provider_id is None, s.provider_id or "", s.seq or 0, s.earliest, s.key))

    def replace_day(self, conn: Any, day: date, new: list[RouteStop]) -> None:
        for key in [k for k, s in self.visits.items() if s.day == day and not s.released]:
            del self.visits[key]
        for stop in new:
            self.visits.setdefault(stop.key, stop)

    def unroute(self, conn: Any, plan_id: str, from_day: date, reason: str, to_day: date | None = None) -> int:
        hit = [s for s in self.visits.values() if s.plan_id == plan_id and s.day >= from_day and not s.released
               and (to_day is None or s.day <= to_day)]
        for s in hit:
            self.visits[s.key] = replace(s, provider_id=None, seq=None, planned_arrival=None, planned_start=None,
                                         travel_minutes=None, unplanned_reason=reason)
        return len(hit)

    def of_plan(self, conn: Any, plan_id: str, from_day: date, to_day: date) -> list[RouteStop]:
        return sorted((s for s in self.visits.values() if s.plan_id == plan_id and from_day <= s.day <= to_day),
                      key=lambda s: s.day)

    def unreleased(self, provider_id: str, now: datetime) -> list[ActiveJobRow]:
        """A provider's planned visits not yet released, the next day's worth, as matching reads them."""
        return [ActiveJobRow(s.key, Status.ASSIGNED.value, s.service, 5, s.lat, s.lon, None, None, None, True, True,
                             s.earliest, s.latest, s.duration, s.resident_id, s.planned_start)
                for s in self.visits.values()
                if s.provider_id == provider_id and not s.released and s.latest > now
                and s.earliest < now + _ROUTE_AHEAD]

    def to_release(self, conn: Any, now: datetime, lead: timedelta, limit: int = 50) -> list[RouteStop]:
        due = [s for s in self.visits.values()
               if not s.released and s.provider_id is not None and s.earliest <= now + lead]
        return sorted(due, key=lambda s: (s.earliest, s.key))[:limit]

    def mark_released(
        self, conn: Any, key: str, request_id: str | None, at: datetime, reason: str | None = None,
    ) -> None:
        if stop := self.visits.get(key):
            self.visits[key] = replace(stop, released_at=at, request_id=request_id,
                                       unplanned_reason=reason or stop.unplanned_reason)

    def missed_due(self, conn: Any, now: datetime, limit: int = 50) -> list[str]:
        rows = self.requests._live(lambda w: w.request.planned and w.request.status is Status.ASSIGNED
                                   and w.request.window_end is not None and w.request.window_end <= now
                                   and w.request.id not in self.missed_at)
        return [w.request.id for w in sorted(rows, key=lambda w: w.request.window_end or now)[:limit]]

    def mark_missed(self, conn: Any, request_id: str, at: datetime) -> None:
        self.missed_at[request_id] = at

    def add_run(self, conn: Any, run: PlanRun) -> None:
        self.run_rows.append(run)

    def runs(self, conn: Any, day: date, limit: int = 20) -> list[PlanRun]:
        return sorted((r for r in self.run_rows if r.day == day), key=lambda r: (r.ran_at, r.id), reverse=True)[:limit]


class MemoryRepositories:
    """Every repository of dispatch in memory (`usecases.ports.Repositories`), on one clock."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        self.timeline = MemoryTimeline()
        self.requests = MemoryRequests(self.timeline)
        self.offers = MemoryOffers(self.requests)
        self.shifts = MemoryShifts()
        self.providers = MemoryProviders(self.requests, self.offers, self.shifts, clock)
        self.offers.seen_at = self.providers.last_seen
        self.events = MemoryEvents(clock)
        self.outbox = MemoryOutbox(clock)
        self.devices = MemoryDevices()
        self.residents = MemoryResidents()
        self.notices = MemoryNotices()
        self.plans = MemoryPlans(self.requests)
        self.providers.planned = self.plans.unreleased


class MemoryTransactions:
    """The timer loop's transactions in memory: nothing to open, nothing to roll back."""

    @contextmanager
    def begin(self) -> Iterator[None]:
        yield None

    def savepoint(self, conn: Any) -> nullcontext[None]:
        return nullcontext()
