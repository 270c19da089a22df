"""Requests come in: a button press, a long press that cancels, an alert, a phone call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homecare import buttons
from homecare.contract.models import CommandType, Service
from homecare.errors import Conflict, Invalid
from homecare.internal import DeviceEvent, OpenRequest

from .. import metrics
from ..domain.presses import ButtonRun, after_join
from ..domain.requests import (
    WAITING,
    ServiceRequest,
    Source,
    Status,
    TimelineEntry,
    open_request,
    press_again,
    stuck_press,
)
from ..domain.sla import expected_arrival
from ..store import new_id
from .context import Dispatch
from .notify import notify
from .offering import offer_next
from .ports import Tx
from .progress import cancel_locked

log = logging.getLogger(__name__)

# A long press counts for the press it follows within this time; one handled first waits for it.
CANCEL_WITHIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Intake:
    """What an intake did: `created`, `joined`, `stuck` (a stuck button's press joined the open
    request without raising its urgency), `duplicate`, `cancelled`, `held` (a cancel before its
    press), `ignored`. `raised`: the urgency a joining press added."""

    outcome: str
    request_id: str | None = None
    raised: int = 0


@dataclass(frozen=True)
class _Origin:
    actor: str
    source: Source
    device_id: str | None = None  # the button to notify
    source_key: str | None = None
    pressed_at: datetime | None = None
    received_at: datetime | None = None
    note: str | None = None
    join_kind: str = "pressed_again"


def button_pressed(conn: Tx, ctx: Dispatch, event: DeviceEvent) -> Intake:
    """A resident pressed a service button: open a request, or join the open one.

    A new request is acknowledged to the button here and offered by the timer loop's next step
    (`TimerLoop.offer_fresh`, woken at once by the caller): the resident's light does not wait for
    the search for a provider, and a replica that dies in between leaves a request the next
    replica's loop offers, not one that is lost."""
    if event.service is None:
        raise Invalid("button.pressed: service is required")
    if not ctx.repos.events.first_time(conn, event.device_id, event.event_id):
        return Intake("duplicate")
    ctx.repos.events.serialize(conn, event.resident_id, event.service.value)
    origin = _Origin(
        actor=f"device:{event.device_id}", source=Source.BUTTON, device_id=event.device_id,
        source_key=f"{event.device_id}:{event.event_id}", pressed_at=event.ts, received_at=event.received_at,
    )
    before = ctx.repos.events.press_run(conn, event.device_id, event.service.value)
    run = buttons.after_press(before.run if before else None, event.ts, ctx.stuck)
    detail = {"event_id": event.event_id}
    if run.stuck:
        result = _stuck_press(conn, ctx, event.resident_id, event.service, origin, detail, before, run)
        record = ButtonRun(run, result.request_id)
    else:
        result = _open_or_join(conn, ctx, event.resident_id, event.service, origin, detail, offer=False)
        record = after_join(before, run, result.request_id, result.raised)
    ctx.repos.events.save_press_run(conn, event.device_id, event.service.value, record)
    if result.outcome != "created":
        return result
    cancel_id = ctx.repos.events.take_cancel(conn, event.device_id, event.service.value, event.ts, CANCEL_WITHIN)
    if cancel_id is None or result.request_id is None:
        return result
    # The resident's long press after this press was handled first (by another replica): it
    # withdraws the request now, as it would have had it come second.
    request = ctx.repos.requests.load(conn, result.request_id, lock=True)
    cancel_locked(conn, ctx, request, "cancelled by the resident", f"device:{event.device_id}", ctx.clock(),
                  event_id=cancel_id)
    return Intake("cancelled", request.id)


def _stuck_press(
    conn: Tx, ctx: Dispatch, resident_id: str, service: Service, origin: _Origin, detail: dict[str, Any],
    before: ButtonRun | None, run: buttons.PressRun,
) -> Intake:
    """A press of a stuck button (homecare/buttons.py): it joins the open request without raising
    its urgency, and the request is marked. At the press that shows the run is stuck, the urgency
    its earlier presses added is taken back and the timeline says why. No answer goes to the button
    (it shows the request already, and a stuck key would draw one a press) and the queue is not
    woken. A stuck run opens no second request: once the request its presses joined is completed or
    cancelled, the rest of the run is recorded and ignored (a person has seen to it; the device
    alert says the button is stuck; a press after a pause, or of another service, opens one as
    usual). Without a request of the run's own, the press opens one, marked stuck from the start.
    """
    metrics.PRESSES_STUCK.labels(service.value).inc()
    request = ctx.repos.requests.find_active(conn, resident_id, service.value, lock=True)
    if request is None and before is not None and before.request_id and before.run.started == run.started:
        log.info("press of stuck button %s ignored: the run's request %s is closed",
                 origin.device_id, before.request_id)
        return Intake("ignored", before.request_id)
    if request is None:
        result = _open_or_join(conn, ctx, resident_id, service, origin, detail, offer=False)
        if result.request_id is not None:
            ctx.repos.requests.mark_stuck(conn, result.request_id, run)
        return result
    if buttons.became_stuck(before.run if before else None, run) or not _marked(before, request.id):
        undo = before.raised if before is not None and before.request_id == request.id else 0
        why = f"button stuck: {run.describe()}, urgency not raised"
        ctx.repos.requests.save(conn, stuck_press(
            request, ctx.clock(), origin.actor, undo, reason=why, presses=run.presses, span_s=round(run.span_s, 1),
            **detail,
        ))
    ctx.repos.requests.mark_stuck(conn, request.id, run)
    return Intake("stuck", request.id)


def _marked(before: ButtonRun | None, request_id: str) -> bool:
    """Whether the stuck run's earlier presses already marked this request (a stuck run that goes
    on into a new request marks that one too, with a timeline entry of its own)."""
    return before is not None and before.run.stuck and before.request_id == request_id


def button_cancelled(conn: Tx, ctx: Dispatch, event: DeviceEvent) -> Intake:
    """A long press: the resident withdraws the open request for that service."""
    if event.service is None:
        raise Invalid("button.cancelled: service is required")
    if not ctx.repos.events.first_time(conn, event.device_id, event.event_id):
        return Intake("duplicate")
    ctx.repos.events.serialize(conn, event.resident_id, event.service.value)
    request = ctx.repos.requests.find_active(conn, event.resident_id, event.service.value, lock=True)
    if request is None:  # nothing yet: kept for the press it may follow, handled after it
        log.info("button.cancelled from %s: no open %s request; held for its press", event.device_id,
                 event.service.value)
        ctx.repos.events.hold_cancel(conn, event.device_id, event.event_id, event.service.value, event.ts)
        return Intake("held")
    now, actor = ctx.clock(), f"device:{event.device_id}"
    if not request.can(Status.CANCELLED):
        ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, actor, "cancel_refused", {
            "event_id": event.event_id, "reason": f"the request is {request.status.value}",
        }))
        return Intake("ignored", request.id)
    cancel_locked(conn, ctx, request, "cancelled by the resident", actor, now, event_id=event.event_id)
    return Intake("cancelled", request.id)


def alert_opened(conn: Tx, ctx: Dispatch, message: OpenRequest) -> Intake:
    """Another service (a suspected fall) asks for help for a resident."""
    source_key = f"{message.source}:{message.source_id}"
    existing = ctx.repos.requests.find_by_source_key(conn, source_key)
    if existing is not None:
        return Intake("duplicate", existing.id)
    origin = _Origin(
        actor=f"{message.source}:{message.source_id}", source=Source.ALERT, source_key=source_key,
        note=message.reason, join_kind="alert_joined",
    )
    detail = {"reason": message.reason, **({"source_device": message.device_id} if message.device_id else {})}
    return _open_or_join(conn, ctx, message.resident_id, message.service, origin, detail)


def phoned(
    conn: Tx, ctx: Dispatch, resident_id: str, service: Service, note: str | None, actor: str
) -> Intake:
    """A dispatcher opens a request for a caller (or joins the open one)."""
    ctx.repos.residents.check(conn, resident_id)  # NotFound for an unknown resident
    origin = _Origin(actor=actor, source=Source.PHONE, note=note, join_kind="called_again")
    return _open_or_join(conn, ctx, resident_id, service, origin, {"note": note} if note else {})


def _open_or_join(
    conn: Tx, ctx: Dispatch, resident_id: str, service: Service, origin: _Origin,
    detail: dict[str, Any], offer: bool = True,
) -> Intake:
    """`detail`: what the timeline entry carries besides (the event id, the reason, the note).
    `offer`: make the first offer in this transaction; else the request is left fresh (open,
    never tried) for the timer loop's next step."""
    now = ctx.clock()
    existing = ctx.repos.requests.find_active(conn, resident_id, service.value, lock=True)
    if existing is None:
        location, district = ctx.repos.residents.home(conn, resident_id)
        request, entry = open_request(
            new_id("r"), resident_id, service, ctx.policy.for_service(service), now, origin.actor,
            source=origin.source, device_id=origin.device_id, location=location, district=district, **detail,
        )
        if ctx.repos.requests.insert(
            conn, request, entry, source_key=origin.source_key, note=origin.note, pressed_at=origin.pressed_at
        ):
            _acknowledge(conn, ctx, request, origin, now)
            metrics.REQUESTS_OPENED.labels(service.value, origin.source.value).inc()
            if offer:
                offer_next(conn, ctx, request, now)
            return Intake("created", request.id)
        # Another replica opened one at the same moment (we waited for its commit): join it.
        if origin.source_key and (same := ctx.repos.requests.find_by_source_key(conn, origin.source_key)):
            return Intake("duplicate", same.id)
        existing = ctx.repos.requests.find_active(conn, resident_id, service.value, lock=True)
        if existing is None:
            raise Conflict(f"could not open a {service.value} request for {resident_id}; try again")
    joined = ctx.repos.requests.save(conn, press_again(existing, now, origin.actor, origin.join_kind, **detail))
    if existing.status is Status.OPEN:
        ctx.repos.requests.set_retry(conn, existing.id, now)  # more urgent now: try again at the next pass
    metrics.PRESSES_JOINED.labels(service.value).inc()
    _remind(conn, ctx, existing, origin, now)
    return Intake("joined", existing.id, raised=joined.urgency - existing.urgency)


def _acknowledge(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, origin: _Origin, now: datetime
) -> None:
    """Tell the button the request is received; a phone request is acknowledged by the call."""
    ctx.repos.requests.set_acknowledged(conn, request.id, now)
    notify(conn, ctx, request, CommandType.ACKNOWLEDGED, now, origin_at=origin.received_at)


def _remind(conn: Tx, ctx: Dispatch, request: ServiceRequest, origin: _Origin, now: datetime) -> None:
    """Answer a repeated press with what the button should show now."""
    device = origin.device_id
    if origin.source is not Source.BUTTON:
        return  # only a press expects its button to light up again
    if request.status in WAITING or request.status is Status.ESCALATED or request.provider_id is None:
        notify(conn, ctx, request, CommandType.ACKNOWLEDGED, now, device_id=device, origin_at=origin.received_at)
        return
    if request.status is Status.ARRIVED:
        return  # the provider is at the door
    provider = ctx.repos.providers.get(conn, request.provider_id)
    arrival = expected_arrival(request)
    left = max(1, round((arrival - now).total_seconds() / 60)) if arrival else (request.eta_minutes or 1)
    notify(
        conn, ctx, request, CommandType.ASSIGNED, now, device_id=device, provider=provider["name"], eta_minutes=left
    )
