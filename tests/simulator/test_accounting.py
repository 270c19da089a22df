"""Shards split a population exactly; the ledger and the press timer count what they should."""

from __future__ import annotations

import pytest

from devices.simulator.ledger import Ledger, expand
from devices.simulator.messages import Outgoing
from devices.simulator.presses import PressTimer
from devices.simulator.shards import Shard, split
from devices.simulator.stats import SimStats, percentile, summarize
from homecare.topics import DeviceChannel


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_home_is_in_exactly_one_shard(count):
    homes = list(range(1000))
    shards = split(homes, count)
    assert len(shards) == count
    assert sorted(i for shard in shards for i in shard) == homes
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for n, shard in enumerate(shards):
        assert all(Shard(n, count).owns(i) for i in shard)


def test_shard_text():
    assert Shard.parse("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    for bad in ("4/4", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ValueError):
            Shard.parse(bad)


def _batch(stamps_ms: list[int], label: str | None = None) -> Outgoing:
    samples = [{"ts": ms, "occupied": False, "heart_rate": None, "respiration_rate": None, "movement": 0.0}
               for ms in stamps_ms]
    return Outgoing(DeviceChannel.TELEMETRY, {"samples": samples}, label=label)


def test_the_ledger_keeps_accepted_samples_as_runs_and_ignores_broken_messages():
    ledger = Ledger()
    base = 1_790_000_000_000
    ledger.accepted("bed-a", _batch([base + i * 1000 for i in range(10)]))
    ledger.accepted("bed-a", _batch([base + i * 1000 for i in range(10, 20)]))
    ledger.accepted("bed-a", _batch([base + 60_000, base + 61_000]))  # after a gap
    ledger.accepted("bed-a", _batch([base + 5000]))  # a redelivery of one already counted
    ledger.accepted("bed-a", _batch([base + 99_000], label="malformed.type"))
    ledger.accepted("bed-a", _batch([base + 98_000], label="skew.accepted"))
    event = Outgoing(DeviceChannel.EVENTS, {"event_id": "e-1", "ts": base, "type": "bed.exit"})
    ledger.accepted("bed-a", event)
    selftest = {"event_id": "e-2", "ts": base + 1, "type": "device.selftest", "result": "fail",
                "checks": {"radar": False}, "trigger": "schedule"}
    ledger.accepted("bed-a", Outgoing(DeviceChannel.EVENTS, selftest, label="selftest.fail"))
    stamps = ledger.samples("bed-a")
    assert stamps == sorted({base + i * 1000 for i in range(20)} | {base + 60_000, base + 61_000, base + 98_000})
    body = ledger.to_json()
    assert len(body["samples"]["bed-a"]) <= 5  # runs, not one entry per sample
    assert expand(body["samples"]["bed-a"]) == stamps
    assert body["events"]["bed-a"] == [["e-1", "bed.exit", base, ""], ["e-2", "device.selftest", base + 1, "fail"]]


def test_presses_are_timed_to_their_answer_and_a_redelivered_answer_counts_once():
    now = [100.0]
    stats = SimStats()
    timer = PressTimer(stats, clock=lambda: now[0])
    timer.pressed("meal")
    now[0] += 0.05
    timer.pressed("meal")  # pressed again before the first answer
    timer.pressed("bathing")
    now[0] += 0.1
    answer = {"command_id": "c-1", "type": "request.acknowledged", "request_id": "r-1", "service": "meal"}
    assert timer.command(answer) == pytest.approx(150.0)
    assert timer.command(answer) is None  # QoS 1 redelivery
    assert timer.command({**answer, "command_id": "c-2", "type": "request.completed"}) is None
    now[0] += 0.2
    assert timer.command({**answer, "command_id": "c-3", "type": "request.assigned"}) == pytest.approx(300.0)
    assert timer.command({**answer, "command_id": "c-4"}) is None  # nothing pending for meal
    assert timer.unanswered() == 1
    assert [round(v) for _, v in stats.series("press_to_ack_ms")] == [150, 300]
    timer.forget()
    assert timer.unanswered() == 0 and stats.get("presses_unanswered") == 1


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([], 50) is None
    assert summarize([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0}


def test_a_shard_runs_only_its_homes_and_no_providers(broker_url):
    from devices.simulator.roster import DeviceCredentials, EnrolledProvider, EnrolledResident, Roster
    from devices.simulator.run import Simulation
    from devices.simulator.scenario import Scenario
    from tests.support import unique, wait_for

    tag = unique("sh").replace("-", "")[:10]
    homes = [
        EnrolledResident(
            index=i, id=f"res-{i}", name=f"R {i}", district="Huangpu", lat=31.2, lon=121.4,
            bed=DeviceCredentials(id=f"bed-{tag}-{i}", kind="bed", resident_id=f"res-{i}", secret="s"),
            button=DeviceCredentials(id=f"btn-{tag}-{i}", kind="button", resident_id=f"res-{i}", secret="s"),
        )
        for i in range(7)
    ]
    provider = EnrolledProvider(index=0, id="p-0", name="P", services=["meal"], lat=31.2, lon=121.4, capacity=1,
                                username="p", password="pw")
    roster = Roster(run_tag=tag, residents=homes, providers=[provider])
    scenario = Scenario(homes=7, providers=1, speed=60, misbehaviour={"share": 0.3, "kinds": {"silent": 1}})
    shards = [Simulation("http://127.0.0.1:9", broker_url, scenario, "x", "y", roster=roster, shard=Shard(n, 2),
                         providers=False) for n in range(2)]
    for sim in shards:
        sim.start()
    try:
        wait_for(lambda: sum(s.stats()["devices_connected"] for s in shards) == 14, timeout=15, what="all online")
        owned = [{x.device_id for x in s.fleet.sessions} for s in shards]
        assert owned[0] == {d for h in homes if h.index % 2 == 0 for d in (h.bed.id, h.button.id)}
        assert owned[1] == {d for h in homes if h.index % 2 == 1 for d in (h.bed.id, h.button.id)}
        assert all(s.crew is None for s in shards)
        # Who misbehaves is drawn over the whole population: the shards agree and split it.
        assert not set(shards[0].faults) & set(shards[1].faults)
        assert len(shards[0].faults) + len(shards[1].faults) == round(0.3 * 14)
    finally:
        for sim in shards:
            sim.stop()
