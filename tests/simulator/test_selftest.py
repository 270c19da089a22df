"""The v1.1 self-test of the simulated devices: on a schedule, at the resident's test press and
when the platform asks; its faults; and devices built before v1.1, which have none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devices.simulator.bed import BedBehaviour
from devices.simulator.button import RESIDENT_TEST_HOURS, RESIDENT_TESTS_PER_DAY, ButtonBehaviour
from devices.simulator.clock import Moment, SimClock
from devices.simulator.fleet import DeviceSpec, Fleet
from devices.simulator.misbehaviour import Fault, Misbehaving, assign_faults
from devices.simulator.population import residents
from devices.simulator.scenario import Misbehaviour, Scenario
from devices.simulator.selftest import before_v11
from devices.simulator.stats import SimStats
from homecare.contract import DeviceKind, parse_ts, validate
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DeviceChannel, device_topic
from tests.support import unique, wait_for

from .helpers import SHANGHAI, Sent, check_contract, moments, run
from .test_transport import Listener

START = datetime(2026, 11, 26, 0, 0, tzinfo=SHANGHAI)
PLANS = residents(24, seed=5)
BUTTON_CHECKS = {"button", "light", "speaker", "battery"}
BED_CHECKS = {"pressure", "radar"}


def _button(i: int = 0, **options) -> ButtonBehaviour:
    options.setdefault("press_rate_factor", 0.0)
    return ButtonBehaviour(f"btn-st-{i:03d}", PLANS[i], 5, **options)


def _bed(i: int = 0, **options) -> BedBehaviour:
    return BedBehaviour(f"bed-st-{i:03d}", PLANS[i], 5, SHANGHAI, **options)


def _selftests(sent: list[Sent], trigger: str | None = None) -> list[Sent]:
    return [s for s in sent if s.out.kind == "device.selftest" and trigger in (None, s.out.payload["trigger"])]


def _drive(device, first: Moment, real_s: range) -> list[Sent]:
    """Tick a device at each of these real seconds after `first`."""
    return [Sent(m, out) for t in real_s for m in [first.after(t)] for out in device.tick(m)]


def _request(command_id: str) -> dict:
    return {"command_id": command_id, "type": "selftest.request"}


def _validated(sent: list[Sent]) -> None:
    for item in sent:
        model = check_contract(item.out)
        stamps = [x.ts for x in model.samples] if item.out.channel is DeviceChannel.TELEMETRY else [
            model.ts] if item.out.channel is not DeviceChannel.STATUS else []
        assert all(ts <= item.moment.wall for ts in stamps)


# -- the schedule --------------------------------------------------------------------------------


def test_every_device_tests_itself_once_a_day_each_at_its_own_time():
    """Three simulated days at 3600x (a day is 24 s of wall time): three scheduled self-tests a
    device, a day apart, the first at a phase of its own so a fleet does not test at once."""
    speed, day_s = 3600.0, 24.0
    first_offsets = {}
    for i in range(len(PLANS)):
        for device, checks in ((_button(i), BUTTON_CHECKS), (_bed(i), BED_CHECKS)):
            first = next(moments(START, 72, speed))
            sent = _drive(device, first, range(73))  # an hour of simulated time a tick
            _validated(sent)
            wall0 = first.wall
            tests = _selftests(sent)
            scheduled = _selftests(sent, "schedule")
            assert len(scheduled) == 3 and len(tests) - len(scheduled) <= 2  # a resident's test now and then
            stamps = [(parse_ts(s.out.payload["ts"]) - wall0).total_seconds() for s in scheduled]
            assert 0 <= stamps[0] < day_s
            assert [round(b - a, 2) for a, b in zip(stamps, stamps[1:], strict=False)] == [day_s, day_s]
            for item in scheduled:
                model = check_contract(item.out)
                assert (model.result, model.trigger, model.command_id) == ("pass", "schedule", None)
                assert set(model.checks) == checks and all(model.checks.values())
            first_offsets[device.device_id] = stamps[0]
    offsets = sorted(first_offsets.values())
    assert len(set(offsets)) == len(offsets)
    assert offsets[-1] - offsets[0] > day_s / 2  # spread over the day, not in a wave


def test_a_residents_test_press_is_rare_and_in_the_daytime():
    """About one a month a resident, between 9:00 and 20:00: counted over 40 buttons x 15 days."""
    buttons, days, speed = 40, 15, 3600.0
    wall0 = datetime.now(UTC) - timedelta(days=1)
    first = Moment(START, wall0, speed)
    tests = []
    for plan in residents(buttons, seed=6):
        button = ButtonBehaviour(f"btn-res-{plan.index:03d}", plan, 6, press_rate_factor=0.0)
        sent = _drive(button, first, range(days * 24 + 1))  # an hour of simulated time a tick
        tests += _selftests(sent, "resident")
        assert len(_selftests(sent, "schedule")) == days
    expected = buttons * days * RESIDENT_TESTS_PER_DAY
    assert abs(len(tests) - expected) <= 4 * expected ** 0.5 + 2, f"{len(tests)} test presses, expected {expected:.0f}"
    for item in tests:
        model = check_contract(item.out)
        assert model.command_id is None and model.result == "pass"
        sim = (START + (model.ts - wall0) * speed).astimezone(SHANGHAI)
        minute = sim.hour * 60 + sim.minute
        assert RESIDENT_TEST_HOURS.start * 60 - 1 <= minute <= RESIDENT_TEST_HOURS.stop * 60 + 1


def test_a_low_battery_fails_the_button_self_test():
    button = _button(1)
    button.battery = 0.12
    moment = next(moments(START, 1, 60))
    _, test = button.on_command(_request("c-low"), moment)
    model = check_contract(test)
    assert model.result == "fail" and model.checks == {"button": True, "light": True, "speaker": True, "battery": False}


def test_after_a_power_cut_the_schedule_starts_again_from_the_boot():
    """No test is stamped in the hours the device was off, and none is made up for them."""
    speed = 3600.0
    button = _button(2, selftest_interval_h=1)
    first = next(moments(START, 30, speed))
    before = _drive(button, first, range(4))
    button.power_restored()
    after = _drive(button, first, range(10, 16))  # off for six simulated hours
    stamps = [parse_ts(s.out.payload["ts"]) for s in _selftests(before + after, "schedule")]
    assert len(_selftests(before, "schedule")) == 3
    assert not [t for t in stamps if first.after(3).wall < t < first.after(10).wall]
    assert len(_selftests(after, "schedule")) == 5  # phase, then every hour: 10+p, 11+p, ... 14+p


# -- what the platform asks -------------------------------------------------------------------


@pytest.mark.parametrize("make, checks", [(_button, BUTTON_CHECKS), (_bed, BED_CHECKS)])
def test_a_selftest_request_is_acked_and_answered_at_once_with_its_command_id(make, checks):
    device = make(3)
    moment = next(moments(START, 1, 60))
    device.tick(moment)
    replies = device.on_command(_request("c-st-1"), moment)
    assert [r.channel for r in replies] == [DeviceChannel.ACKS, DeviceChannel.EVENTS]
    ack, test = (check_contract(r) for r in replies)
    assert ack.command_id == "c-st-1"
    assert test.type == "device.selftest" and test.command_id == "c-st-1" and test.trigger == "platform"
    assert test.result == "pass" and set(test.checks) == checks
    assert test.ts == ack.ts and abs((test.ts - moment.wall).total_seconds()) < 0.001
    # QoS 1 may deliver it again: acked again, not tested twice.
    assert [r.channel for r in device.on_command(_request("c-st-1"), moment.after(1))] == [DeviceChannel.ACKS]
    again = device.on_command(_request("c-st-2"), moment.after(2))
    assert check_contract(again[1]).command_id == "c-st-2"


def test_a_config_sets_the_interval_and_the_next_test_follows_it():
    speed = 3600.0
    bed = _bed(4, report_interval_s=10)
    first = next(moments(START, 40, speed))
    sent = _drive(bed, first, range(0, 30))  # a day and more on the default: one scheduled test
    assert len(_selftests(sent, "schedule")) in (1, 2)
    last = parse_ts(_selftests(sent, "schedule")[-1].out.payload["ts"])
    config = {"command_id": "c-cfg", "type": "config", "selftest_interval_h": 2, "report_interval_s": 5}
    replies = bed.on_command(config, first.after(30))
    assert [check_contract(r).command_id for r in replies] == ["c-cfg"]  # acked, nothing else
    assert bed.report_interval_s == 5 and bed.selftest.interval == timedelta(hours=2)
    later = _selftests(_drive(bed, first, range(31, 41)), "schedule")
    stamps = [parse_ts(s.out.payload["ts"]) for s in later]
    # More than two hours since the last: the next is due at once, then every two hours.
    assert stamps[0] - last > timedelta(seconds=2) and stamps[0] <= first.after(31).wall
    assert [round((b - a).total_seconds(), 2) for a, b in zip(stamps, stamps[1:], strict=False)] == [2.0] * 5


def test_a_config_before_the_first_test_keeps_the_devices_phase():
    a, b = _button(5), _button(5)
    first = next(moments(START, 30, 3600.0))
    a.tick(first)
    b.tick(first)
    a.on_command({"command_id": "c-1", "type": "config", "selftest_interval_h": 6}, first)
    phase = b.selftest.next - first.sim
    assert abs(a.selftest.next - first.sim - phase / 4) < timedelta(milliseconds=1)  # the same share of it
    assert a.on_command({"command_id": "c-2", "type": "config", "selftest_interval_h": 745}, first) == []
    assert a.invalid_commands == 1 and a.selftest.interval == timedelta(hours=6)  # out of range: refused


# -- faults ------------------------------------------------------------------------------------


def test_a_broken_key_or_speaker_fails_the_self_test_after_the_first():
    config = Misbehaviour(selftest_fail_after=1)
    moment = next(moments(START.replace(hour=7), 4, 60))
    parts = set()
    for i in range(12):
        button = _button(i, press_rate_factor=30.0)
        faulty = Misbehaving(button, Fault.SELFTEST_FAIL, config, seed=3)
        faulty.tick(moment)
        _, first = faulty.on_command(_request(f"c-{i}-1"), moment)
        _, second = faulty.on_command(_request(f"c-{i}-2"), moment.after(1))
        assert first.label is None and check_contract(first).result == "pass"
        model = check_contract(second)
        assert second.label == "selftest.fail" and second.well_formed  # the platform should accept it
        assert model.result == "fail" and model.checks == {**dict.fromkeys(BUTTON_CHECKS, True), faulty.part: False}
        presses = [o for m in list(moments(START.replace(hour=7), 3, 60))[120:] for o in faulty.tick(m)
                   if o.kind == "button.pressed"]
        if faulty.part == "button":
            assert presses == []  # the key does not register
        else:
            assert presses, "a broken speaker does not stop the presses"
        parts.add(faulty.part)
    assert parts == {"button", "speaker"}


def test_a_bed_with_a_broken_radar_fails_and_measures_no_vital_signs():
    def occupied(sent: list[Sent]) -> list[dict]:
        return [x for s in sent for x in s.out.payload.get("samples", []) if x["occupied"]]

    faulty = Misbehaving(_bed(6, selftest_interval_h=1, report_interval_s=1), Fault.SELFTEST_FAIL, Misbehaviour(),
                         seed=3)
    assert faulty.part == "radar"
    sent = run(faulty, START, 6, speed=3600.0)
    tests = _selftests(sent, "schedule")
    assert len(tests) == 6 and all(s.out.label == "selftest.fail" for s in tests)
    assert {json.dumps(check_contract(s.out).checks) for s in tests} == {'{"pressure": true, "radar": false}'}
    samples = occupied(sent)
    assert samples and all(x["heart_rate"] is None and x["respiration_rate"] is None for x in samples)
    working = occupied(run(_bed(6, report_interval_s=1), START, 6, speed=3600.0))
    assert len(working) == len(samples) and any(x["heart_rate"] is not None for x in working)


def test_a_skipping_device_stops_testing_itself_but_otherwise_works():
    config = Misbehaviour(selftest_skip_after=1)
    faulty = Misbehaving(_bed(7, selftest_interval_h=1, report_interval_s=1), Fault.SELFTEST_SKIP, config, seed=3)
    first = next(moments(START, 10, 3600.0))
    sent = _drive(faulty, first, range(0, 8))
    _validated(sent)
    tests = _selftests(sent)
    assert len(tests) == 1 and tests[0].out.label is None and faulty.active
    after = [s for s in sent if s.moment.wall > tests[0].moment.wall]
    assert any(s.out.channel is DeviceChannel.TELEMETRY for s in after)
    assert faulty.status() is not None  # still online, not silent
    replies = faulty.on_command(_request("c-skip"), first.after(9))
    assert [r.channel for r in replies] == [DeviceChannel.ACKS]  # acked, never answered
    assert faulty.on_command({"command_id": "c-cfg", "type": "config", "report_interval_s": 2}, first.after(9))
    assert faulty.report_interval_s == 2


def test_self_test_faults_go_only_to_devices_that_have_the_self_test():
    devices = [(f"bed-{i:04d}", DeviceKind.BED) for i in range(200)]
    devices += [(f"btn-{i:04d}", DeviceKind.BUTTON) for i in range(200)]
    old = {d for d, kind in devices if kind is DeviceKind.BUTTON}
    config = Misbehaviour(share=0.2, kinds={"selftest_fail": 1.0, "selftest_skip": 1.0})
    faults = assign_faults(devices, config, seed=4, before_v11=old)
    assert faults and all(d.startswith("bed-") for d in faults)
    assert set(faults.values()) == {Fault.SELFTEST_FAIL, Fault.SELFTEST_SKIP}
    assert len(assign_faults(devices, config, seed=4)) == 80
    with pytest.raises(ValueError, match="built before v1.1"):
        Misbehaving(_button(0, before_v11=True), Fault.SELFTEST_SKIP, config, seed=4)


# -- firmware built before v1.1 -----------------------------------------------------------------


def test_older_firmware_never_tests_itself_and_does_not_ack_a_selftest_request():
    for device in (_button(8, before_v11=True, press_rate_factor=10.0, selftest_interval_h=1),
                   _bed(8, before_v11=True, selftest_interval_h=1)):
        sent = run(device, START, 24, speed=600.0)
        _validated(sent)
        assert sent and _selftests(sent) == []
        moment = sent[-1].moment
        assert device.on_command(_request("c-old"), moment) == []  # a type its firmware does not know
        assert device.unknown_commands == 1 and device.invalid_commands == 0
        assert not device.knows("selftest.request") and device.knows("config")
        config = {"command_id": "c-cfg", "type": "config", "selftest_interval_h": 2, "report_interval_s": 5}
        assert [r.payload["command_id"] for r in device.on_command(config, moment)] == ["c-cfg"]
    assert device.report_interval_s == 5  # the rest of the config is applied
    assert any(s.out.kind == "button.pressed" for s in run(_button(9, before_v11=True, press_rate_factor=30.0),
                                                            START.replace(hour=7), 3, speed=600.0))


def test_a_share_of_the_population_is_built_before_v11_and_every_shard_agrees():
    ids = [f"btn-{i:04d}" for i in range(1000)]
    old = before_v11(ids, 0.1, seed=2)
    assert len(old) == 100 and old == before_v11(list(reversed(ids)), 0.1, seed=2)
    assert old != before_v11(ids, 0.1, seed=3) and before_v11(ids, 0.0, seed=2) == set()
    demo = Scenario.demo()
    assert demo.before_v11_share > 0 and demo.misbehaviour.share > 0
    assert {"selftest_fail", "selftest_skip"} <= set(demo.misbehaviour.kinds)
    assert demo.selftest_interval_h == 24


# -- over the real broker ----------------------------------------------------------------------


def test_over_the_broker_self_tests_are_sent_answered_and_counted(broker_url, instance):
    """Four homes, one of them with firmware built before v1.1, at an hour a second: every v1.1
    device tests itself on schedule and answers a selftest.request; the old ones send nothing of
    it and ack no selftest.request, which a later command's ack proves (QoS 1 keeps a client's
    order)."""
    tag = unique("st")
    stats = SimStats()
    clock = SimClock(3600, datetime(2026, 11, 29, 9, 0, tzinfo=SHANGHAI))
    specs, new, old = [], set(), set()
    for plan in residents(4, seed=12):
        legacy = plan.index == 3
        bed = BedBehaviour(f"bed-{tag}-{plan.index}", plan, 12, SHANGHAI, before_v11=legacy, selftest_interval_h=1)
        button = ButtonBehaviour(f"btn-{tag}-{plan.index}", plan, 12, press_rate_factor=0.0, before_v11=legacy,
                                 selftest_interval_h=1)
        specs += [DeviceSpec(bed, "s"), DeviceSpec(button, "s")]
        (old if legacy else new).update({bed.device_id, button.device_id})
    listener = Listener(broker_url, f"listener-{instance}")
    listener.link.start()
    assert listener.link.wait_subscribed(15)
    fleet = Fleet(broker_url, specs, clock, stats, connect_rate=500)
    fleet.start()
    try:
        wait_for(lambda: fleet.connected() == 8, timeout=20, what="8 devices connected")

        def tests_of(device_id: str) -> list:
            events = (validate(DeviceChannel.EVENTS, p) for p in listener.of(DeviceChannel.EVENTS, device_id))
            return [e for e in events if e.type == "device.selftest"]

        wait_for(lambda: all(tests_of(d) for d in new), timeout=20, what="a scheduled self-test from each")
        commander = MqttLink(BrokerAddress.parse(broker_url), unique("commander"), clean_session=True)
        commander.start()
        try:
            for device_id in sorted(new | old):
                topic = device_topic(device_id, DeviceChannel.COMMANDS)
                commander.publish(topic, json.dumps(_request(f"st-{device_id}")), qos=1).wait_for_publish(10)
                after = {"command_id": f"cfg-{device_id}", "type": "config", "selftest_interval_h": 12}
                commander.publish(topic, json.dumps(after), qos=1).wait_for_publish(10)
        finally:
            commander.stop()

        def acked(device_id: str) -> list[str]:
            return [json.loads(p)["command_id"] for p in listener.of(DeviceChannel.ACKS, device_id)]

        wait_for(lambda: all(f"cfg-{d}" in acked(d) for d in new | old), timeout=20, what="every config acked")
        for device_id in new:
            assert f"st-{device_id}" in acked(device_id)
            answers = [t for t in tests_of(device_id) if t.command_id == f"st-{device_id}"]
            assert len(answers) == 1 and answers[0].trigger == "platform" and answers[0].result == "pass"
        for device_id in old:
            assert acked(device_id) == [f"cfg-{device_id}"]
            assert tests_of(device_id) == []
        wait_for(lambda: stats.typed("selftests_sent").get("platform.pass") == 6, timeout=10,
                 what="six answers counted")
        assert stats.typed("selftests_sent").get("schedule.pass", 0) >= 6
        assert stats.get("unknown_commands") == 2 and stats.get("invalid_commands") == 0
    finally:
        fleet.stop()
        listener.link.stop()
