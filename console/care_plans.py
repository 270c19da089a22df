"""The care plan editor of the resident page: a resident's plans (active and ended), the form's
fields read into a plan, and the dispatcher's add, edit and end, through dispatch's interface.

A form's fields arrive as text; `plan_fields` turns them into what dispatch's use cases take, or
raises Invalid with the reason (a date that is no date, a NUL byte, a window that ends before it
starts is the domain's to say). The page shows the reason; nothing here is a 5xx."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import psycopg

from homecare.auth import Scope
from homecare.errors import Invalid, NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import Dispatch

SERVICES = ("meal", "bathing", "escort", "mobility")  # what a plan can ask for: emergencies are never planned
REPEATS = (("daily", "Every day"), ("weekdays", "On given weekdays"), ("every_n_weeks", "Every n weeks"),
           ("once", "Once"))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TEXT_MAX = {"note": 500, "skills": 400, "preferred_provider_id": 64, "reason": 500}


def editor(
    conn: psycopg.Connection, ctx: Dispatch, resident_id: str, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """What the resident page's care plan panel shows: the plans, the providers one may prefer
    (those the user sees), and today (the centre's date, the form's first day)."""
    providers = [{"id": p["id"], "name": p["name"]} for p in dispatch.list_providers(conn, ctx, districts)]
    return {
        "care_plans": plans_of(conn, resident_id), "plan_providers": providers,
        "provider_names": {p["id"]: p["name"] for p in providers},
        "today": dispatch.today_of_plans(ctx).isoformat(),
        "plan_services": SERVICES, "repeats": REPEATS, "weekday_names": WEEKDAYS,
    }


def plans_of(conn: psycopg.Connection, resident_id: str) -> list[dict[str, Any]]:
    """The resident's care plans as the page lists them: active first, each with its recurrence
    in words and its fields as the edit form shows them."""
    rows = [{**p, "when": recurrence_words(p), "window": f"{_hhmm(p['window_start'])}–{_hhmm(p['window_end'])}",
             "form": _form_values(p)} for p in dispatch.care_plans_of(conn, resident_id)]
    rows.sort(key=lambda p: (not p["active"], _hhmm(p["window_start"]), p["id"]))
    return rows


def recurrence_words(f: dict[str, Any]) -> str:
    """"every day", "Mon, Wed, Fri", "every 2 weeks on Tue", "once on 2026-12-08"; with its end."""
    days = ", ".join(WEEKDAYS[d] for d in sorted(f.get("weekdays") or ()))
    repeat = f["repeat"]
    if repeat == "once":
        return f"once on {f['starts_on']}"
    if repeat == "daily":
        words = "every day"
    elif repeat == "weekdays":
        words = f"every {days}"
    else:
        words = f"every {f.get('every_weeks') or 1} weeks on {days}"
    words += f" from {f['starts_on']}"
    return words + (f" until {f['ends_on']}" if f.get("ends_on") else "")


def _hhmm(value: time | str) -> str:
    return value.strftime("%H:%M") if isinstance(value, time) else str(value)[:5]


def _form_values(f: dict[str, Any]) -> dict[str, Any]:
    """A plan's fields as an edit form shows them."""
    return {
        **f, "window_start": _hhmm(f["window_start"]), "window_end": _hhmm(f["window_end"]),
        "skills": ", ".join(f.get("skills") or ()), "starts_on": str(f["starts_on"]),
        "ends_on": str(f["ends_on"]) if f.get("ends_on") else "", "note": f.get("note") or "",
        "preferred_provider_id": f.get("preferred_provider_id") or "",
    }


def plan_fields(form: dict[str, Any]) -> dict[str, Any]:
    """A care plan form's fields (text, and a list of weekday numbers) as the use cases take them;
    Invalid with the reason for what cannot be read."""
    text = {k: _text(k, v) for k, v in form.items() if k != "weekdays"}
    service = text.get("service", "")
    if service not in SERVICES:
        raise Invalid(f"service: choose one of {', '.join(SERVICES)}")
    repeat = text.get("repeat", "")
    if repeat not in {r for r, _ in REPEATS}:
        raise Invalid(f"repeat: choose one of {', '.join(r for r, _ in REPEATS)}")
    weekdays = sorted({_int("weekdays", d, 0, 6) for d in form.get("weekdays") or ()})
    return {
        "service": service,
        "repeat": repeat,
        "starts_on": _date("starts_on", text.get("starts_on", "")),
        "ends_on": _date("ends_on", text["ends_on"]) if text.get("ends_on") else None,
        "weekdays": weekdays if repeat in ("weekdays", "every_n_weeks") else [],
        "every_weeks": _int("every_weeks", text.get("every_weeks") or "1", 1, 52),
        "window_start": _time("window_start", text.get("window_start", "")),
        "window_end": _time("window_end", text.get("window_end", "")),
        "duration_minutes": _int("duration_minutes", text.get("duration_minutes", ""), 1, 480),
        "skills": sorted({s.strip() for s in text.get("skills", "").split(",") if s.strip()}),
        "preferred_provider_id": text.get("preferred_provider_id") or None,
        "note": text.get("note") or None,
    }


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name}: must be text")
    if "\x00" in value:
        raise Invalid(f"{name}: must not contain NUL bytes")
    if len(value) > TEXT_MAX.get(name, 40):
        raise Invalid(f"{name}: at most {TEXT_MAX.get(name, 40)} characters")
    return value.strip()


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: a date, YYYY-MM-DD") from None


def _time(name: str, value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: a time of day, HH:MM") from None


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name}: a whole number") from None
    if not low <= number <= high:
        raise Invalid(f"{name}: between {low} and {high}")
    return number


def add(conn: psycopg.Connection, ctx: Dispatch, resident_id: str, form: dict[str, Any], actor: str,
        scope: Scope) -> str:
    """A new care plan for a resident in the user's districts; its id."""
    _in_view(conn, resident_id, scope)
    return str(dispatch.save_care_plan(conn, ctx, resident_id, plan_fields(form), actor)["id"])


def edit(conn: psycopg.Connection, ctx: Dispatch, resident_id: str, plan_id: str, form: dict[str, Any],
         actor: str, scope: Scope) -> None:
    """Change one of the resident's plans (a plan of another resident is not found)."""
    _own(conn, resident_id, plan_id, scope)
    dispatch.save_care_plan(conn, ctx, resident_id, plan_fields(form), actor, plan_id=plan_id)


def end(conn: psycopg.Connection, ctx: Dispatch, resident_id: str, plan_id: str, actor: str, scope: Scope) -> None:
    """End one of the resident's plans: no more visits."""
    _own(conn, resident_id, plan_id, scope)
    dispatch.end_care_plan(conn, ctx, plan_id, actor)


def pause(conn: psycopg.Connection, ctx: Dispatch, resident_id: str, plan_id: str, form: dict[str, Any],
          actor: str, scope: Scope) -> list[str]:
    """Pause one of the resident's plans on the form's days; the requests already released on them."""
    _own(conn, resident_id, plan_id, scope)
    return dispatch.pause_care_plan(
        conn, ctx, plan_id, _date("from_day", _text("from_day", form.get("from_day", ""))),
        _date("to_day", _text("to_day", form.get("to_day", ""))), _text("reason", form.get("reason", "")), actor)


def resume(conn: psycopg.Connection, ctx: Dispatch, resident_id: str, plan_id: str, pause_id: str, actor: str,
           scope: Scope) -> None:
    """End a pause of one of the resident's plans."""
    _own(conn, resident_id, plan_id, scope)
    dispatch.resume_care_plan(conn, ctx, plan_id, pause_id, actor)


def _in_view(conn: psycopg.Connection, resident_id: str, scope: Scope) -> None:
    """NotFound for an unknown resident, or one of a district the user does not work for."""
    scope.check(residents.get(conn, resident_id).district, f"resident {resident_id}")


def _own(conn: psycopg.Connection, resident_id: str, plan_id: str, scope: Scope) -> None:
    _in_view(conn, resident_id, scope)
    if plan_id not in {p["id"] for p in dispatch.care_plans_of(conn, resident_id)}:
        raise NotFound(f"care plan {plan_id} not found")
