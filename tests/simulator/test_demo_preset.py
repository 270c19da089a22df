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
