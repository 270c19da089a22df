"""The demo exercises what a service centre relies on (issue 13): buttons that fail or skip their
self-tests, older firmware, a stuck button, a provider whose app goes away, and family contacts
who agreed to be e-mailed; the same in every run of the preset."""

from __future__ import annotations

from collections import Counter

import pytest

from devices.simulator import population
from devices.simulator.misbehaviour import Fault, assign_faults
from devices.simulator.scenario import Scenario
from devices.simulator.selftest import before_v11
from homecare.contract import DeviceKind


@pytest.mark.parametrize("tag", ["004cda", "e9f1a0"])
def test_the_demo_has_each_kind_of_faulty_device_whatever_the_runs_tag(tag):
    demo = Scenario.demo()
    devices = [(f"{kind}-{tag}-{i:05d}", DeviceKind.BED if kind == "bed" else DeviceKind.BUTTON)
               for kind in ("bed", "btn") for i in range(demo.homes)]
    old = before_v11([d for d, _ in devices], demo.before_v11_share, demo.seed)
    faults = assign_faults(devices, demo.misbehaviour, demo.seed, before_v11=old)
    kinds = Counter(faults.values())
    assert kinds[Fault.STUCK_BUTTON] >= 1 and kinds[Fault.SELFTEST_FAIL] >= 1 and kinds[Fault.SELFTEST_SKIP] >= 1
    assert all(d.startswith("btn-") for d, f in faults.items() if f is Fault.STUCK_BUTTON)
    assert old and not set(old) & {d for d, f in faults.items() if f is not Fault.STUCK_BUTTON}
    assert demo.provider.app_lost_share > 0


def test_some_demo_homes_have_a_family_contact_who_agreed_to_be_emailed():
    demo = Scenario.demo()
    contacts = [c for i in range(demo.homes) for c in population.resident(i, demo.seed, demo.districts).contacts]
    assert any(c.email and c.notify for c in contacts)


def test_the_demo_signs_in_the_city_and_a_dispatcher_of_each_of_two_districts():
    from launch.demo import demo_logins

    demo = Scenario.demo()
    logins = demo_logins(demo)
    assert [(lg.username, lg.role, lg.districts) for lg in logins] == [
        ("admin", "admin", ()),
        ("dispatcher", "city", ()),
        ("dispatcher-huangpu", "dispatcher", ("Huangpu",)),
        ("dispatcher-jingan", "dispatcher", ("Jing'an",)),
    ]
    homes = {population.resident(i, demo.seed, demo.districts).district for i in range(demo.homes)}
    assert {d for lg in logins for d in lg.districts} <= homes, "each sees homes of its own"
    assert len({lg.password for lg in logins}) == 4 and all(len(lg.password) >= 12 for lg in logins)


def test_the_demo_plans_care_for_its_homes():
    demo = Scenario.demo()
    assert demo.care.share > 0 and demo.care.plan_days >= 1 and demo.care.shifts
