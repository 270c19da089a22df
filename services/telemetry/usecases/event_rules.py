"""Use cases of the event rules: bed exits and entries, suspected falls, low batteries, device
self-tests, liveness and stuck buttons; and the timers they leave in the rule state. Each runs in
the caller's transaction, on the repositories of its context (PostgreSQL in the service, memory in
the rule tests)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from homecare.internal import DeviceEvent, DeviceState
from services.telemetry.domain.rules import bed_exit, button, device, fall, selftest
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Clearance, Finding
from services.telemetry.usecases.context import Alerting
from services.telemetry.usecases.ports import Tx

log = logging.getLogger(__name__)

LimitsOf = Callable[[Tx, str], RuleLimits]
BED_EVENTS = ("bed.exit", "bed.entry")


def on_bed_event(conn: Tx, ctx: Alerting, event: DeviceEvent, limits: RuleLimits, now: datetime) -> str | None:
    """A bed reported an exit or an entry: move its presence on, set or clear its timer, and
    raise the night-exit alert when a return came too late. The alert id, if any."""
    presence = ctx.repos.rule_state.presence(conn, event.device_id, event.resident_id)
    found: Finding | None = None
    if event.type == "bed.exit":
        presence = bed_exit.after_exit(presence, event.ts, ctx.on_site(conn, event.resident_id))
    elif event.type == "bed.entry":
        presence = bed_exit.after_entry(presence, event.ts)
        found = bed_exit.verdict(presence, now, limits, attended_now=False)
        if found is not None and ctx.on_site(conn, event.resident_id):
            found = None
    else:
        raise ValueError(f"not a bed event: {event.type}")
    due = _next_look(presence, limits, now)
    if due is not None:  # an exit learnt late waits a little for the entry that may follow it
        due = max(due, now + timedelta(seconds=limits.bed_exit_settle_s))
    ctx.repos.rule_state.save_presence(conn, presence, due)
    return ctx.repos.alerts.raise_finding(conn, found) if found else None


def _next_look(presence: bed_exit.Presence, limits: RuleLimits, now: datetime) -> datetime | None:
    """When the bed's timer is due: the end of the allowed absence, or, for an exit during a visit,
    the next look whether the provider is still there."""
    if bed_exit.watching_visit(presence, limits):
        return now + bed_exit.VISIT_RECHECK
    return bed_exit.due_at(presence, limits)


def on_fall(conn: Tx, ctx: Alerting, event: DeviceEvent, emergency_requested: bool) -> str | None:
    """A suspected fall: an alert at once."""
    found = fall.finding(event.device_id, event.resident_id, event.event_id, event.ts, event.confidence,
                         emergency_requested)
    return ctx.repos.alerts.raise_finding(conn, found)


def on_battery_low(conn: Tx, ctx: Alerting, event: DeviceEvent) -> list[str]:
    """A device reported a low battery (its own threshold: the event always counts as low)."""
    status = device.DeviceStatus(event.device_id, event.resident_id, event.device_kind.value, "online", event.ts)
    found = device.low_battery(status, event.battery, event.ts, {"source": "battery.low", "event_id": event.event_id})
    return apply(conn, ctx, [found])


def on_button_pressed(conn: Tx, ctx: Alerting, event: DeviceEvent, limits: RuleLimits, now: datetime) -> list[str]:
    """A button press: carry its key's run on, and raise the device alert when it shows the button
    stuck (homecare/buttons.py). The press itself is dispatch's."""
    if event.service is None:
        return []  # refused by the contract; nothing to count it under
    service = event.service.value
    key = ctx.repos.rule_state.button_key(conn, event.device_id, service)
    if key is not None and key.last_event_id == event.event_id:
        return []  # a redelivery of the press fed last
    key, found = button.on_press(key, event.device_id, service, event.resident_id, event.event_id, event.ts, now,
                                 ctx.stuck, limits.button_stuck_clear_s)
    ctx.repos.rule_state.save_button_key(conn, key)
    return apply(conn, ctx, [found] if found else [])
def on_selftest(conn: Tx, ctx: Alerting, event: DeviceEvent) -> list[str]:
    """A device tested itself (v1.1): record it, set the deadline for the next one, raise a failed
    one, clear what a passing one ends."""
    test = selftest.Selftest(
        event.device_id, event.resident_id, event.device_kind.value, event.ts, event.result or selftest.FAIL,
        event.checks or {}, event.trigger, event.event_id,
    )
    record, outcomes = selftest.received(ctx.repos.rule_state.selftest(conn, event.device_id), test, ctx.selftests)
    ctx.repos.rule_state.save_selftest(conn, record)
    return apply(conn, ctx, outcomes)


def on_device_state(
    conn: Tx, ctx: Alerting, message: DeviceState, limits: RuleLimits, now: datetime,
) -> list[str]:
    """The gateway announced a liveness change: raise or clear device alerts, set the offline timer."""
    status = device.DeviceStatus(
        message.device_id, message.resident_id, message.device_kind.value, message.state, message.at, message.battery,
    )
    if not device.is_newer(ctx.repos.rule_state.device_status(conn, message.device_id), status):
        return []  # a repeat or an older announcement
    outcomes: list[Finding | Clearance] = list(device.on_status(status, limits))
    due = device.due_at(status, limits)
    if due is not None and due <= now:
        late = device.due(status, now, limits)
        outcomes += [late] if late else []
        due = None
    ctx.repos.rule_state.save_device_status(conn, status, due)
    return apply(conn, ctx, outcomes)


def run_due(conn: Tx, ctx: Alerting, now: datetime, limits_of: LimitsOf) -> list[str]:
    """Act on the timers that are due: night exits still out of bed, devices still offline,
    self-tests that did not come, stuck buttons quiet again."""
    changed: list[str] = []
    for presence in ctx.repos.rule_state.due_presences(conn, now):
        limits = limits_of(conn, presence.resident_id)
        if bed_exit.watching_visit(presence, limits):  # an exit during a visit: is the provider still there?
            if not ctx.on_site(conn, presence.resident_id):
                presence = bed_exit.visit_over(presence, now)
                log.info("the visit to %s is over with the resident out of bed: the exit counts from now",
                         presence.resident_id)
            ctx.repos.rule_state.save_presence(conn, presence, _next_look(presence, limits, now))
            continue
        found = bed_exit.verdict(presence, now, limits, attended_now=False)
        if found is not None and ctx.on_site(conn, presence.resident_id):
            log.info("night exit of %s not alerted: a provider is on site", presence.resident_id)
            found = None
        ctx.repos.rule_state.save_presence(conn, presence, None)
        if found is not None:
            changed += [a for a in [ctx.repos.alerts.raise_finding(conn, found)] if a]
    for status in ctx.repos.rule_state.due_devices(conn, now):
        found = device.due(status, now, limits_of(conn, status.resident_id))
        ctx.repos.rule_state.clear_device_due(conn, status.device_id)
        if found is not None:
            changed += [a for a in [ctx.repos.alerts.raise_finding(conn, found)] if a]
    for key in ctx.repos.rule_state.due_button_keys(conn, now):
        # No stuck press for a while: the run is over (a later press starts afresh), and the alert
        # closes unless another key of the button is still stuck.
        ctx.repos.rule_state.forget_button_key(conn, key.device_id, key.service)
        if ctx.repos.rule_state.stuck_keys_left(conn, key.device_id) == 0:
            clear_s = limits_of(conn, key.resident_id).button_stuck_clear_s
            changed += apply(conn, ctx, [button.clearance(key.device_id, now, clear_s)])
    for record in ctx.repos.rule_state.due_selftests(conn, now):
        record, missed = selftest.missed(record, now, ctx.selftests)
        ctx.repos.rule_state.save_selftest(conn, record)
        if missed is not None:
            # Chased at once: a device whose schedule merely drifted answers, and clears the fault.
            asked = ctx.ask_selftest(conn, record.device_id)
            if asked is not None:
                missed = replace(missed, evidence={**missed.evidence, "asked_command_id": asked})
            changed += [a for a in [ctx.repos.alerts.raise_finding(conn, missed)] if a]
    return changed


def check_never_connected(conn: Tx, ctx: Alerting, now: datetime) -> list[str]:
    """Devices provisioned longer ago than `ctx.never_connected_after` that never connected (the
    gateway's registry knows them): a device fault each, raised once per device."""
    found = []
    for unseen in ctx.unconnected(conn, now - ctx.never_connected_after):
        status = device.DeviceStatus(unseen.device_id, unseen.resident_id, unseen.kind, "never_seen", now)
        finding = device.never_connected(status, unseen.provisioned_at, now, ctx.never_connected_after)
        found += [finding] if finding else []
    return apply(conn, ctx, list(found))


def apply(conn: Tx, ctx: Alerting, outcomes: list[Finding | Clearance]) -> list[str]:
    """Raise the findings and clear the clearances; the ids of alerts that changed."""
    changed = []
    for outcome in outcomes:
        alerts = ctx.repos.alerts
        alert = alerts.raise_finding(conn, outcome) if isinstance(outcome, Finding) else alerts.clear(conn, outcome)
        if alert:
            changed.append(alert)
    return changed
