"""Misbehaving devices produce what they say, and the contract rejects the broken messages with
the reason a firmware engineer would be shown."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from devices.simulator.bed import BedBehaviour
from devices.simulator.button import ButtonBehaviour
from devices.simulator.messages import Outgoing
from devices.simulator.misbehaviour import (
    EXPECTED_CODE,
    SELFTEST_FAULTS,
    Fault,
    Misbehaving,
    assign_faults,
    skew_is_rejected,
)
from devices.simulator.population import residents
from devices.simulator.scenario import Misbehaviour, Scenario
from homecare.contract import ContractError, DeviceKind, parse_ts, validate
from homecare.topics import DeviceChannel

from .helpers import SHANGHAI, Sent, encoded, moments, run

START = datetime(2026, 11, 28, 7, 0, tzinfo=SHANGHAI)
PLANS = residents(12, seed=3)


def _bed(i: int = 0, report_interval_s: int = 10) -> BedBehaviour:
    return BedBehaviour(f"bed-mis-{i:03d}", PLANS[i], 3, SHANGHAI, report_interval_s=report_interval_s)


def _button(i: int = 0, tick_s: float = 1.0) -> ButtonBehaviour:
    return ButtonBehaviour(f"btn-mis-{i:03d}", PLANS[i], 3, press_rate_factor=30.0, tick_s=tick_s)


def _sent(device, minutes: float = 10, speed: float = 60.0) -> list[Outgoing]:
    return [s.out for s in run(device, START, minutes / 60, speed=speed)]


def _verdict(out: Outgoing) -> ContractError | None:
    try:
        validate(out.channel, out.wire)
    except ContractError as exc:
        return exc
    return None


def test_malformed_messages_are_rejected_with_the_expected_code_and_a_reason_naming_the_field():
    config = Misbehaviour(break_rate=1.0)
    labels: Counter[str] = Counter()
    for device in (_bed(0), _button(1)):
        faulty = Misbehaving(device, Fault.MALFORMED, config, seed=3)
        for out in [faulty.status(), *_sent(faulty)]:
            error = _verdict(out)
            assert out.label and out.label.startswith("malformed."), out
            assert error is not None, f"{out.label} was accepted: {out.wire[:120]!r}"
            assert error.code == EXPECTED_CODE[out.label]
            labels[out.label] += 1
            if out.label == "malformed.json":
                assert error.reason.startswith("payload: invalid JSON")
            elif out.label == "malformed.missing":
                assert error.reason.endswith(": is required")
                assert error.reason.split(":")[0] in {"samples", "event_id", "online", "command_id"}
            else:
                assert error.reason.split(":")[0] in {"samples[0].occupied", "event_id", "online", "command_id"}
    assert set(labels) == {"malformed.json", "malformed.missing", "malformed.type"}


def test_a_break_rate_breaks_about_that_share():
    faulty = Misbehaving(_bed(2), Fault.MALFORMED, Misbehaviour(break_rate=0.25), seed=3)
    sent = _sent(faulty, minutes=120)
    broken = sum(1 for out in sent if out.label)
    assert 0.15 < broken / len(sent) < 0.35
    assert all(_verdict(out) is None for out in sent if not out.label)


def test_out_of_range_values_are_rejected_as_schema_errors_naming_the_field():
    bed = Misbehaving(_bed(3), Fault.OUT_OF_RANGE, Misbehaviour(break_rate=1.0), seed=3)
    telemetry = [o for o in _sent(bed, minutes=300) if o.channel is DeviceChannel.TELEMETRY]
    assert telemetry and all(o.label == "out_of_range" for o in telemetry)
    reasons = {_verdict(o).reason for o in telemetry}
    assert all(_verdict(o).code == "schema" for o in telemetry)
    fields = {r.split(":")[0].split(".")[-1] for r in reasons}
    assert fields <= {"heart_rate", "respiration_rate", "movement"} and len(fields) >= 2
    assert all("must be <=" in r or "must be >=" in r for r in reasons)

    button = Misbehaving(_button(4), Fault.OUT_OF_RANGE, Misbehaviour(break_rate=0.5), seed=3)
    statuses = [o for o in _sent(button) if o.label == "out_of_range"]
    assert statuses and all(o.channel is DeviceChannel.STATUS for o in statuses)
    assert {_verdict(o).reason for o in statuses} == {"battery: must be <= 1.0"}


def test_duplicates_are_byte_for_byte_copies_of_valid_messages():
    faulty = Misbehaving(_bed(5), Fault.DUPLICATE, Misbehaviour(duplicate_rate=1.0), seed=3)
    sent = _sent(faulty)
    originals = [o for o in sent if o.label is None]
    copies = [o for o in sent if o.label]
    assert originals and len(copies) == len(originals)
    assert {o.label for o in copies} <= {"duplicate.telemetry", "duplicate.events"}
    for original, copy in zip(originals, copies, strict=True):
        assert encoded(copy) == encoded(original) and copy.channel is original.channel
        assert _verdict(copy) is None
    assert not any(o.well_formed for o in copies)  # not counted as sent twice


@pytest.mark.parametrize("skew_s", [600.0, -8 * 86400.0, 120.0, -3600.0])
def test_clock_skew_beyond_the_window_is_refused_and_within_it_accepted(skew_s):
    config = Misbehaviour(skews_s=[skew_s])
    faulty = Misbehaving(_bed(6), Fault.CLOCK_SKEW, config, seed=3)
    assert faulty.skew == timedelta(seconds=skew_s)
    rejected = skew_is_rejected(faulty.skew)
    assert rejected == (skew_s in (600.0, -8 * 86400.0))
    # Sent now (the helper runs in the past): a device whose clock is off by `skew`.
    from devices.simulator.clock import Moment

    wall = datetime.now(SHANGHAI)
    outs = []
    for i in range(25):
        outs += faulty.tick(Moment(START + timedelta(seconds=60 * i), wall - timedelta(seconds=25 - i), 60.0))
    telemetry = [o for o in outs if o.channel is DeviceChannel.TELEMETRY]
    assert telemetry
    for out in telemetry:
        assert out.label == ("skew.rejected" if rejected else "skew.accepted")
        error = _verdict(out)
        if rejected:
            assert error is not None and error.code == EXPECTED_CODE["skew.rejected"] == "timestamp"
            assert "ts" in error.reason
        else:
            assert error is None and out.well_formed
            first = parse_ts(out.payload["samples"][0]["ts"])
            assert abs((first - wall).total_seconds() - skew_s) < 30
    assert faulty.status().label is None  # a status carries no timestamp


def test_a_stuck_button_floods_presses_after_a_while():
    config = Misbehaviour(stuck_presses_per_s=2.0, stuck_after_s=(3.0, 3.0))
    faulty = Misbehaving(_button(7, tick_s=1.0), Fault.STUCK_BUTTON, config, seed=3)
    assert faulty.tick_interval() == 0.5
    ticks = list(moments(START, 20 / 3600 * 60, speed=60.0, real_step_s=0.5))
    sent = [Sent(m, out) for m in ticks for out in faulty.tick(m)]
    stuck = [s for s in sent if s.out.label == "stuck.press"]
    assert len(stuck) >= 30
    assert min(s.moment.wall for s in stuck) - ticks[0].wall == timedelta(seconds=3)
    assert {s.out.payload["service"] for s in stuck} == {faulty.stuck_service.value}
    assert len({s.out.payload["event_id"] for s in stuck}) == len(stuck)  # each a new press
    assert all(_verdict(s.out) is None for s in stuck)
    with pytest.raises(ValueError):
        Misbehaving(_bed(0), Fault.STUCK_BUTTON, config, seed=3)


def test_a_silent_device_says_nothing_once_silent_not_even_acks():
    config = Misbehaviour(silent_after_s=(5.0, 5.0))
    faulty = Misbehaving(_bed(8, report_interval_s=1), Fault.SILENT, config, seed=3)
    ticks = list(moments(START, 30 / 3600 * 60, speed=60.0))
    sent = [Sent(m, out) for m in ticks for out in faulty.tick(m)]
    assert len(sent) >= 4 and all(s.moment.wall - ticks[0].wall < timedelta(seconds=5) for s in sent)
    assert faulty.active and faulty.status() is None
    from devices.simulator.clock import Moment

    command = {"command_id": "c-1", "type": "config", "report_interval_s": 5}
    assert faulty.on_command(command, Moment(START, datetime.now(SHANGHAI), 60.0)) == []


def test_faults_go_to_the_chosen_share_and_stuck_buttons_only_to_buttons():
    devices = [(f"bed-{i:04d}", DeviceKind.BED) for i in range(500)]
    devices += [(f"btn-{i:04d}", DeviceKind.BUTTON) for i in range(500)]
    config = Misbehaviour(share=0.1)
    faults = assign_faults(devices, config, seed=9)
    assert len(faults) == 100
    assert faults == assign_faults(list(reversed(devices)), config, seed=9)  # seeded, order-free
    assert set(faults.values()) == set(Fault) - SELFTEST_FAULTS  # those only when named
    assert all(d.startswith("btn-") for d, f in faults.items() if f is Fault.STUCK_BUTTON)
    only = assign_faults(devices, Misbehaviour(share=0.05, kinds={"silent": 1.0}), seed=9)
    assert set(only.values()) == {Fault.SILENT} and len(only) == 50
    assert assign_faults(devices, Misbehaviour(), seed=9) == {}


def test_scenarios_describe_misbehaviour_and_power_cuts():
    scenario = Scenario.load("devices/simulator/scenarios/misbehaving.yaml")
    assert scenario.misbehaviour.share > 0 and scenario.power_cuts
    assert Scenario.load("devices/simulator/scenarios/bench-load.yaml").homes == 5000
    with pytest.raises(ValueError, match="unknown fault kinds"):
        Misbehaviour(kinds={"gremlins": 1.0})


def test_a_stuck_button_with_the_default_settings_is_what_the_platform_calls_stuck():
    """The simulated fault meets the platform's one definition (homecare/buttons.py) with the
    defaults of both, so the demo's stuck buttons raise their device alert."""
    from homecare.buttons import StuckRule, after_press
    from homecare.settings import Settings

    config = Misbehaviour(stuck_after_s=(3.0, 3.0))  # the default rate
    faulty = Misbehaving(_button(7, tick_s=1.0), Fault.STUCK_BUTTON, config, seed=3)
    ticks = list(moments(START, 20 / 3600 * 60, speed=60.0, real_step_s=faulty.tick_interval()))
    presses = [parse_ts(out.payload["ts"]) for m in ticks for out in faulty.tick(m) if out.label == "stuck.press"]
    rule, run = StuckRule.from_settings(Settings()), None
    for at in presses:
        run = after_press(run, at, rule)
    assert run is not None and run.stuck and run.presses == len(presses) > 60
    assert (run.stuck_since - run.started).total_seconds() <= rule.min_span_s + 0.5
