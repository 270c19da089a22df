"""A bed's seeded day and night, without I/O."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import pytest

from devices.simulator.bed import MAX_BATCH, BedBehaviour
from devices.simulator.clock import Moment
from devices.simulator.population import residents
from homecare.contract import parse_ts
from homecare.topics import DeviceChannel

from .helpers import SHANGHAI, Sent, check_contract, moments, run, run_on_its_own_ticks

START = datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def two_days():
    """30 beds ticked every real second through 48 simulated hours at 60x."""
    out = {}
    for plan in residents(30, seed=11):
        bed = BedBehaviour(f"bed-test-{plan.index:03d}", plan, 11, SHANGHAI)
        out[bed] = run(bed, START, 48, speed=60)
    return out


def _sim_time(bed: BedBehaviour, sent, ts: str) -> datetime:
    """Where in simulated time a wall timestamp falls (inverse of Moment.wall_of)."""
    moment = sent.moment
    return moment.sim - (moment.wall - parse_ts(ts)) * moment.speed


def test_every_message_validates_and_no_timestamp_is_in_the_future(two_days):
    for sent in two_days.values():
        assert sent, "a bed reports"
        for item in sent:
            model = check_contract(item.out)  # raises ContractError with the reason otherwise
            stamps = [s.ts for s in model.samples] if item.out.channel is DeviceChannel.TELEMETRY else [model.ts]
            assert max(stamps) <= item.moment.wall, "a message is stamped after it was sent"


def test_samples_are_one_a_second_unique_and_batched_every_ten_seconds(two_days):
    for sent in two_days.values():
        batches = [s.out for s in sent if s.out.channel is DeviceChannel.TELEMETRY]
        assert {len(b.payload["samples"]) for b in batches[1:-1]} == {10}
        stamps = [parse_ts(x["ts"]) for b in batches for x in b.payload["samples"]]
        assert len(stamps) == len(set(stamps))
        gaps = {round((b - a).total_seconds(), 1) for a, b in zip(stamps, stamps[1:], strict=False)}
        assert gaps == {1.0}


def test_ticked_only_when_it_sends_a_bed_sends_the_same_messages_at_the_same_times():
    """A bed asks to be woken for its next report or event, not for every sample: the simulator
    then does a fraction of the work for the same samples, events and timestamps."""
    real_s = 24 * 60  # 24 simulated hours at 60x
    first = next(moments(START, 24, 60))
    for plan in residents(6, seed=11):
        a = BedBehaviour(f"bed-a-{plan.index:03d}", plan, 11, SHANGHAI)
        every_second = [Sent(m, out) for i in range(real_s + 1) for m in [first.after(i)] for out in a.tick(m)]
        own, ticks = run_on_its_own_ticks(BedBehaviour(f"bed-b-{plan.index:03d}", plan, 11, SHANGHAI), first, real_s)

        def stamps(sent):
            return [x["ts"] for s in sent if s.out.channel is DeviceChannel.TELEMETRY for x in s.out.payload["samples"]]

        def events(sent):
            return [(s.out.kind, s.out.payload["ts"], s.moment.wall)
                    for s in sent if s.out.channel is DeviceChannel.EVENTS]

        mine, theirs = stamps(own), stamps(every_second)
        assert mine == theirs[:len(mine)] and len(theirs) - len(mine) <= 10  # the run ends between reports
        assert [e[:2] for e in events(own)] == [e[:2] for e in events(every_second)]
        assert events(own), "a day has a night in bed"
        for kind, ts, sent_at in events(own):  # sent when it happened, not at the next report
            assert (sent_at - parse_ts(ts)).total_seconds() < 0.05, kind
        assert ticks <= real_s / 10 + 2 * len(events(own)) + 5  # a tick a report, and one an event
def test_vitals_in_contract_ranges_and_null_when_empty(two_days):
    occupied = empty = 0
    for sent in two_days.values():
        for item in sent:
            for sample in item.out.payload.get("samples", []):
                if sample["occupied"]:
                    occupied += 1
                    if sample["heart_rate"] is not None:
                        assert 20 <= sample["heart_rate"] <= 250
                        assert 4 <= sample["respiration_rate"] <= 60
                else:
                    empty += 1
                    assert sample["heart_rate"] is None and sample["respiration_rate"] is None
                    assert sample["movement"] == 0.0
    assert occupied > 0 and empty > 0


def test_heart_rate_is_personal_and_lower_asleep(two_days):
    means = []
    for bed, sent in two_days.items():
        asleep, awake = [], []
        for item in sent:
            for sample in item.out.payload.get("samples", []):
                if sample["heart_rate"] is None:
                    continue
                t = _sim_time(bed, item, sample["ts"])
                span = bed.plan(t).span_at(t)
                settling = span is not None and (t - span.start < MINUTE * 2 or span.end - t < MINUTE)
                if span is not None and not settling:
                    (asleep if span.asleep(t) else awake).append(sample["heart_rate"])
        assert asleep, f"{bed.device_id} slept"
        if len(awake) > 30:
            assert statistics.mean(asleep) < statistics.mean(awake) - 3
        means.append(statistics.mean(asleep))
    assert statistics.stdev(means) > 2, "people differ"


def test_exits_happen_at_night_and_most_return(two_days):
    night_exits = returns = long_absences = 0
    for bed, sent in two_days.items():
        events = [(s, s.out.payload) for s in sent if s.out.channel is DeviceChannel.EVENTS]
        kinds = [e["type"] for _, e in events]
        # Entries and exits alternate: no exit without an entry before it, and vice versa.
        doors = [k for k in kinds if k in ("bed.entry", "bed.exit")]
        assert all(a != b for a, b in zip(doors, doors[1:], strict=False))
        for (item, event), following in zip(events, [*events[1:], (None, None)], strict=False):
            at = _sim_time(bed, item, event["ts"]).astimezone(SHANGHAI)
            if event["type"] == "bed.exit":
                assert at.hour >= 20 or at.hour < 9 or 12 <= at.hour < 17, f"exit at {at}"
                if 0 <= at.hour < 5:
                    night_exits += 1
                    nxt = following[1]
                    if nxt and nxt["type"] == "bed.entry":
                        away = _sim_time(bed, following[0], nxt["ts"]) - at
                        returns += away < timedelta(minutes=15)
                        long_absences += away >= timedelta(minutes=30)
    assert night_exits > 20
    assert returns > night_exits * 0.6, "most come back within minutes"
    assert long_absences >= 1 or returns < night_exits, "a few do not"


def test_falls_are_rare_and_follow_an_exit():
    falls = exits = 0
    for plan in residents(200, seed=3):
        bed = BedBehaviour(f"bed-fall-{plan.index:03d}", plan, 3, SHANGHAI)
        for day in range(10):
            night = bed.plan(START + timedelta(days=day, hours=1))
            exits += len(night.spans)
            for fall in night.falls:
                falls += 1
                assert night.span_at(fall.at) is None, "a fall happens out of bed"
                assert 0.0 <= fall.confidence <= 1.0
    assert 0 < falls < exits * 0.05


def test_the_same_seed_gives_the_same_night():
    plan = residents(1, seed=5)[0]
    a, b = BedBehaviour("bed-a00", plan, 5, SHANGHAI), BedBehaviour("bed-b00", plan, 5, SHANGHAI)
    assert a.plan(START) == b.plan(START)
    other = BedBehaviour("bed-c00", residents(1, seed=6)[0], 6, SHANGHAI)
    assert other.plan(START) != a.plan(START)


def test_config_command_changes_intervals_and_is_acked_once_applied_once():
    bed = BedBehaviour("bed-cfg", residents(1, seed=1)[0], 1, SHANGHAI)
    moment = next(moments(START, 1, 60))
    command = {"command_id": "c-1", "type": "config", "report_interval_s": 30, "sample_interval_s": 2}
    replies = bed.on_command(command, moment)
    assert [r.channel for r in replies] == [DeviceChannel.ACKS]
    assert replies[0].payload["command_id"] == "c-1"
    check_contract(replies[0])
    assert (bed.report_interval_s, bed.sample_interval_s, bed.tick_interval()) == (30, 2, 2.0)
    bed.report_interval_s = 10
    assert len(bed.on_command(command, moment)) == 1  # a redelivery is acked again...
    assert bed.report_interval_s == 10  # ...but not applied again
    assert bed.on_command({"command_id": "c-2", "type": "config", "report_interval_s": 0}, moment) == []


def test_samples_kept_while_offline_go_in_batches_of_at_most_600():
    bed = BedBehaviour("bed-buf", residents(1, seed=1)[0], 1, SHANGHAI)
    for moment in moments(START, 20 * 60 / 3600, 1.0):  # 20 minutes at real speed
        bed.events_until(moment)
        bed._pending.append(bed.sample(moment))
    batches = bed.take_batches()
    sizes = [len(b.payload["samples"]) for b in batches]
    assert sum(sizes) == 1201 and max(sizes) <= MAX_BATCH
    for batch in batches:
        check_contract(batch)  # also within 64 KiB as sent
    stamps = [s["ts"] for b in batches for s in b.payload["samples"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == 1201


def test_wall_of_never_runs_ahead():
    moment = Moment(START, datetime.now(SHANGHAI), 120.0)
    assert moment.wall_of(START + timedelta(hours=1)) == moment.wall
    assert moment.wall - moment.wall_of(START - timedelta(minutes=2)) == timedelta(seconds=1)


def test_a_late_simulator_still_gets_a_sample_a_second():
    """Ticks three seconds apart (a busy simulator): the bed takes the samples it missed."""
    plan = residents(1, seed=11)[0]
    bed = BedBehaviour("bed-late-000", plan, 11, SHANGHAI)
    sent = run(bed, START, 10, speed=60, real_step_s=3.0)  # ten real minutes
    stamps = [parse_ts(x["ts"]) for s in sent if s.out.channel is DeviceChannel.TELEMETRY
              for x in s.out.payload["samples"]]
    assert len(stamps) >= 500
    gaps = {round((b - a).total_seconds(), 1) for a, b in zip(stamps, stamps[1:], strict=False)}
    assert gaps == {1.0}
