"""A request's timeline in words: who did what, for the request view. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SOURCES = {"button": "button press", "phone": "phone call", "alert": "alert"}
COMMANDS = {
    "request.acknowledged": "received", "request.assigned": "provider and arrival time",
    "request.completed": "done (light off)", "request.cancelled": "cancelled (light off)",
}
# How each kind of entry looks: a tone for its marker, and whether it is routine (folded away).
TONES = {
    "created": "info", "assigned": "good", "reassigned": "good", "arrived": "good", "completed": "good",
    "en_route": "good", "escalated": "bad", "cancelled": "muted", "sla.at_risk": "bad",
    "cross_district": "warn",
    "offer.declined": "warn", "offer.expired": "warn", "pressed_again": "warn", "called_again": "warn",
    "alert_joined": "warn", "note": "note", "not_notified": "warn", "cancel_refused": "warn",
    "queued": "warn", "handed_back": "warn", "command.expired": "bad", "button_stuck": "bad",
}
ROUTINE = frozenset({"notified", "offer.withdrawn", "command.sent", "command.acknowledged"})


def actor_label(actor: str, providers: Mapping[str, str]) -> str:
    """"device:btn-1" -> "Button btn-1", "dispatcher:ann" -> "ann (dispatcher)", ..."""
    kind, _, who = actor.partition(":")
    if not who:
        return "System" if actor == "system" else actor
    if kind == "device":
        return f"Device {who}"
    if kind == "provider":
        return providers.get(who, who)
    if kind in ("dispatcher", "admin", "city"):
        return f"{who} ({kind})"
    return f"{kind.capitalize()} {who}"


def describe(entry: Mapping[str, Any], providers: Mapping[str, str]) -> dict[str, Any]:
    """One timeline entry as the page shows it: time, actor, a sentence, a tone."""
    kind, d = entry["kind"], entry.get("detail") or {}

    def who(key: str = "provider_id") -> str:
        pid = d.get(key)
        return d.get("provider") or providers.get(pid or "", pid or "a provider")

    eta = f", arrives in about {d['eta_minutes']} min" if d.get("eta_minutes") is not None else ""
    texts = {
        "created": lambda: f"Request opened by {SOURCES.get(d.get('source'), d.get('source') or 'someone')}"
        + (f": {d['note']}" if d.get("note") else (f": {d['reason']}" if d.get("reason") else "")),
        "pressed_again": lambda: f"Pressed again; urgency now {d.get('urgency')}",
        "button_stuck": lambda: f"Button stuck: {d.get('presses')} presses in {d.get('span_s')} s, urgency not raised"
        f" (back to {d.get('urgency')})",
        "called_again": lambda: f"Called again; urgency now {d.get('urgency')}"
        + (f": {d['note']}" if d.get("note") else ""),
        "alert_joined": lambda: f"An alert joined this request; urgency now {d.get('urgency')}"
        + (f": {d['reason']}" if d.get("reason") else ""),
        "offer.made": lambda: f"Offered to {who()}{eta}" + _within(entry.get("at"), d.get("deadline_at")),
        "offer.declined": lambda: f"{who()} declined" + (f": {d['reason']}" if d.get("reason") else ""),
        "offer.expired": lambda: f"{who()} did not answer in time",
        "offer.withdrawn": lambda: f"Offer to {who()} withdrawn" + (f": {d['reason']}" if d.get("reason") else ""),
        "assigned": lambda: f"Assigned to {who()}{eta}",
        "reassigned": lambda: f"Reassigned from {who('previous_provider_id')} to {who()}{eta}"
        if d.get("previous_provider_id") and not d.get("provider") else f"Reassigned to {who()}{eta}",
        "en_route": lambda: "Provider on the way",
        "arrived": lambda: "Provider arrived",
        "completed": lambda: "Service completed",
        "cancelled": lambda: "Cancelled" + (f": {d['reason']}" if d.get("reason") else ""),
        "escalated": lambda: "Escalated to the dispatchers" + (f": {d['reason']}" if d.get("reason") else ""),
        "notified": lambda: f"Button told: {COMMANDS.get(d.get('command'), d.get('command'))}",
        "command.sent": lambda: f"Sent to the button: {COMMANDS.get(d.get('command'), d.get('command'))}",
        "command.acknowledged": lambda: f"The button shows: {COMMANDS.get(d.get('command'), d.get('command'))}",
        "command.expired": lambda: f"Never reached the button: {COMMANDS.get(d.get('command'), d.get('command'))}"
        + (f" ({d['reason']})" if d.get("reason") else ""),
        "queued": lambda: "Waiting for a provider with room" + (f": {d['reason']}" if d.get("reason") else ""),
        "handed_back": lambda: f"{who('previous_provider_id')} handed it back"
        + (f": {d['reason']}" if d.get("reason") else ""),
        "not_notified": lambda: f"Button not told ({d.get('reason') or 'no button'})",
        "sla.at_risk": lambda: "Arrival target at risk"
        + (f": expected {_clock(d['expected_arrival'])}, due {_clock(d['sla_due_at'])}"
           if d.get("expected_arrival") and d.get("sla_due_at") else ""),
        "cancel_refused": lambda: "The resident's cancel was refused" + (f": {d['reason']}" if d.get("reason") else ""),
        "note": lambda: d.get("text") or d.get("note") or "",
        "cross_district": lambda: f"Help from another district: {who()}"
        + (f" ({', '.join(d['provider_districts'])})" if d.get("provider_districts") else "")
        + (f"; {d['reason']}" if d.get("reason") else ""),
    }
    text = texts[kind]() if kind in texts else _generic(kind, d)
    return {
        "at": _iso(entry.get("at")),
        "actor": actor_label(entry.get("actor") or "", providers),
        "kind": kind,
        "text": text,
        "tone": TONES.get(kind, "info"),
        "routine": kind in ROUTINE,
    }


def describe_all(entries: list[Mapping[str, Any]], providers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The whole timeline, oldest first, in words."""
    return [describe(e, providers) for e in entries]


def _within(at: Any, deadline: Any) -> str:
    """"; answer within 2 min" from the entry's time and the offer's deadline."""
    try:
        start = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        end = deadline if isinstance(deadline, datetime) else datetime.fromisoformat(str(deadline))
    except (TypeError, ValueError):
        return ""
    minutes = max(1, round((end - start).total_seconds() / 60))
    return f"; answer within {minutes} min"


def _generic(kind: str, detail: Mapping[str, Any]) -> str:
    extra = ", ".join(f"{k} {v}" for k, v in detail.items() if k != "from" and v is not None)
    return kind.replace("_", " ").replace(".", " ").capitalize() + (f" ({extra})" if extra else "")


def _clock(value: Any) -> str:
    """"03:12 UTC" from an ISO time or a datetime; the page shows local time where it can."""
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return at.astimezone(UTC).strftime("%H:%M UTC")


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value
