"""A button's presses over seeded days, without I/O."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

from devices.simulator.button import MAX_PRESSES, REPRESS_AFTER, ButtonBehaviour, Waiting
from devices.simulator.clock import Moment
from devices.simulator.population import residents
from devices.simulator.profiles import PRESS_PROFILE
from homecare.contract import Service
from homecare.topics import DeviceChannel

from .helpers import SHANGHAI, check_contract, moments, run

START = datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI)


def _command(type_: str, service: str, n: int, **extra) -> dict:
    return {"command_id": f"c-{n}", "type": type_, "request_id": f"r-{service}", "service": service, **extra}


def test_press_rates_follow_the_hour_of_day():
    """Presses counted per service and hour match the profile (requests closed at once)."""
    factor, days = 20.0, 4
    observed: Counter[tuple[Service, int]] = Counter()
    expected: Counter[tuple[Service, int]] = Counter()
    n = 0
    for plan in residents(40, seed=21):
        button = ButtonBehaviour(f"btn-rate-{plan.index:03d}", plan, 21, press_rate_factor=factor)
        first = Moment(START, datetime.now(SHANGHAI) - timedelta(days=1), 3600.0)
        for minute in range(days * 24 * 60 + 1):
            moment = first.after(minute / 60)  # one simulated minute a tick
            for out in button.tick(moment):
                if out.payload.get("type") == "button.pressed":
                    service = Service(out.payload["service"])
                    observed[service, button.waiting[service].first_pressed.hour] += 1
                    n += 1
                    button.on_command(_command("request.completed", service.value, n), moment)
        for service, hours in PRESS_PROFILE.items():
            for hour, rate in enumerate(hours):
                p = 1 - math.exp(-rate * factor * plan.need / 60)  # a press in a one-minute step
                expected[service, hour] += p * 60 * days
    for service, hours in PRESS_PROFILE.items():
        for hour, rate in enumerate(hours):
            e, o = expected[service, hour], observed[service, hour]
            if rate == 0:
                assert o == 0, f"{service} pressed at {hour}h, when nobody asks for it"
            else:
                assert abs(o - e) <= 4 * math.sqrt(e) + 3, f"{service} at {hour}h: {o} presses, expected {e:.0f}"
    meals = {h: observed[Service.MEAL, h] for h in range(24)}
    assert meals[7] > 2 * meals[8] and meals[12] > 0 and meals[3] == 0
    assert observed[Service.BATHING, 15] > observed[Service.BATHING, 10] == 0


def test_every_message_validates_and_none_is_stamped_ahead():
    for plan in residents(10, seed=4):
        button = ButtonBehaviour(f"btn-ok-{plan.index:03d}", plan, 4, press_rate_factor=10)
        sent = run(button, START, 24, speed=600)
        assert any(s.out.payload.get("type") == "button.pressed" for s in sent)
        for item in sent:
            model = check_contract(item.out)
            if item.out.channel is DeviceChannel.EVENTS:
                assert model.ts <= item.moment.wall
                assert len(model.event_id) == 36
            else:
                assert item.out.channel is DeviceChannel.STATUS and item.out.retain
    status = check_contract(button.status())
    assert status.online and 0 <= status.battery <= 1


def test_presses_again_while_not_assigned_then_gives_up():
    plan = residents(1, seed=9)[0]
    button = ButtonBehaviour("btn-wait", plan, 9, press_rate_factor=0)
    moment = next(moments(START.replace(hour=7), 1, 60))
    button.tick(moment)
    # The resident presses for a meal; the platform acknowledges but nobody is assigned.
    button.waiting[Service.MEAL] = Waiting(Service.MEAL, moment.sim, moment.sim, repress_after=REPRESS_AFTER[0])
    button.on_command(_command("request.acknowledged", "meal", 1), moment)
    presses, cancels, t = 1, 0, moment
    for _ in range(4 * 60):  # four simulated hours, a minute a tick
        t = t.after(1)
        for out in button.tick(t):
            kind = out.payload.get("type")
            presses += kind == "button.pressed"
            cancels += kind == "button.cancelled"
    assert presses == MAX_PRESSES
    assert cancels <= 1


def test_no_more_presses_once_assigned_and_free_again_when_completed():
    plan = residents(1, seed=9)[0]
    button = ButtonBehaviour("btn-assigned", plan, 9, press_rate_factor=0)
    moment = next(moments(START.replace(hour=7), 1, 60))
    button.tick(moment)
    button.waiting[Service.ESCORT] = Waiting(Service.ESCORT, moment.sim, moment.sim)
    replies = button.on_command(
        _command("request.assigned", "escort", 1, provider="Li Mei", eta_minutes=12), moment
    )
    assert [r.payload["command_id"] for r in replies] == ["c-1"]
    assert button.waiting[Service.ESCORT].state == "assigned"
    assert button.waiting[Service.ESCORT].provider == "Li Mei"
    t = moment
    for _ in range(60):
        t = t.after(1)
        assert not [o for o in button.tick(t) if o.payload.get("type") == "button.pressed"]
    button.on_command(_command("request.completed", "escort", 2), t)
    assert Service.ESCORT not in button.waiting


def test_a_request_opened_for_the_resident_is_shown():
    plan = residents(1, seed=9)[0]
    button = ButtonBehaviour("btn-phoned", plan, 9)
    moment = next(moments(START, 1, 60))
    button.on_command(_command("request.acknowledged", "emergency", 1), moment)
    assert button.waiting[Service.EMERGENCY].request_id == "r-emergency"
    button.on_command(_command("request.cancelled", "emergency", 2, reason="false alarm"), moment)
    assert button.waiting == {}


def test_battery_drains_and_low_battery_is_told_once():
    plan = residents(1, seed=2)[0]
    button = ButtonBehaviour("btn-battery", plan, 2, press_rate_factor=0)
    button.battery = 0.2052  # shown as 0.21
    sent = run(button, START, 48, speed=3600)
    low = [s.out for s in sent if s.out.payload.get("type") == "battery.low"]
    assert len(low) == 1
    assert check_contract(low[0]).battery < 0.2
    statuses = [s.out for s in sent if s.out.channel is DeviceChannel.STATUS]
    assert [s.payload["battery"] for s in statuses] == [0.2]  # a new status when the level shown changes


def test_a_rerun_of_the_same_seed_presses_alike_but_never_repeats_an_event_id():
    """The platform drops a repeated (device, event_id) as a redelivery: a second run of the same
    roster must send new ids, while the seed still decides when and what is pressed."""
    plan = residents(1, seed=8)[0]
    runs = []
    for _ in range(2):
        button = ButtonBehaviour("btn-rerun-000", plan, 8, press_rate_factor=30.0)
        sent = [s.out.payload for s in run(button, START.replace(hour=7), 6, speed=600.0)]
        runs.append([p for p in sent if p.get("type") == "button.pressed"])
    first, second = runs
    assert len(first) >= 3
    assert [p["service"] for p in first] == [p["service"] for p in second]
    assert not {p["event_id"] for p in first} & {p["event_id"] for p in second}
