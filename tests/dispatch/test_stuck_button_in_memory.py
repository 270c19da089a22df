"""A stuck button at intake (homecare/buttons.py is the rule): its presses join the open request
without pushing its urgency up, the request is marked with the run's figures and says why in its
timeline; a frantic resident is not stuck; a press after a pause, and a long press, still work.
On the in-memory repositories; tests/dispatch/test_intake.py runs the same on PostgreSQL."""

from __future__ import annotations

import pytest

from homecare.contract.models import CommandType, Service
from services.dispatch.domain.requests import MAX_URGENCY, Status
from services.dispatch.usecases import progress

from .test_rules_in_memory import World


@pytest.fixture
def world() -> World:
    return World()


def press_every(world: World, gap_s: float, seconds: float, service: Service = Service.MEAL) -> list:
    out = []
    for _ in range(round(seconds / gap_s)):
        world.later(seconds=gap_s)
        out.append(world.press(service))
    return out


def test_a_stuck_buttons_presses_leave_the_urgency_where_one_press_put_it_and_mark_the_request(world):
    rid = world.press().request_id
    results = press_every(world, 0.25, 10)  # 4 a second for 10 s
    outcomes = [r.outcome for r in results]
    first_stuck = outcomes.index("stuck")
    assert set(outcomes[:first_stuck]) == {"joined"} and set(outcomes[first_stuck:]) == {"stuck"}
    assert {r.request_id for r in results} == {rid}
    request = world.request(rid)
    assert request.urgency == 1  # what the first press made it: the stuck run's additions taken back
    entries = world.repos.timeline.entries(None, rid)
    stuck = [e for e in entries if e.kind == "button_stuck"]
    assert len(stuck) == 1  # judged once, not a line per press
    assert stuck[0].detail["urgency"] == 1 and stuck[0].detail["urgency_undone"] == MAX_URGENCY - 1
    assert stuck[0].detail["reason"].startswith("button stuck: ") and "urgency not raised" in stuck[0].detail["reason"]
    mark = world.repos.requests.row(rid).stuck
    assert mark is not None and mark.presses == len(results) + 1 and round(mark.span_s) == 10
    # After the judgement the button is no longer answered press by press.
    commands = world.commands(rid)
    assert len(commands) == first_stuck + 1


def test_a_frantic_resident_is_not_stuck_and_each_press_counts(world):
    rid = world.press().request_id
    for _ in range(3):  # bursts of 3 a second for 3 s, a pause of 2 s
        press_every(world, 1 / 3, 3)
        world.later(seconds=2)
    assert all(e.kind != "button_stuck" for e in world.repos.timeline.entries(None, rid))
    assert world.request(rid).urgency == MAX_URGENCY
    assert world.repos.requests.row(rid).stuck is None


def test_a_press_after_the_stuck_run_counts_as_a_persons_and_the_button_is_answered(world):
    rid = world.press().request_id
    press_every(world, 0.25, 8)
    before = len(world.commands(rid))
    world.later(seconds=3)  # the key is free; the resident presses again
    again = world.press()
    assert (again.outcome, again.request_id) == ("joined", rid)
    assert world.request(rid).urgency == 2
    assert len(world.commands(rid)) == before + 1 and world.commands(rid)[-1] == CommandType.ACKNOWLEDGED.value
    assert world.repos.requests.row(rid).stuck is not None  # the mark stays: the button was stuck


def test_a_long_press_still_cancels_during_a_stuck_run(world):
    rid = world.press().request_id
    press_every(world, 0.25, 7)
    world.later(seconds=0.2)
    assert world.press(kind="button.cancelled").outcome == "cancelled"
    assert world.request(rid).status is Status.CANCELLED


def test_a_stuck_run_opens_no_second_request_once_its_own_is_closed_but_another_service_does(world):
    rid = world.press().request_id
    press_every(world, 0.25, 7)
    progress.cancel(None, world.ctx, rid, "button stuck; resident phoned, fine", "dispatcher:ann")
    later = press_every(world, 0.25, 3)
    assert {r.outcome for r in later} == {"ignored"}
    assert world.repos.requests.find_active(None, "res-1", "meal") is None
    world.later(seconds=0.1)
    other = world.press(Service.EMERGENCY)  # another key: a call for help
    assert other.outcome == "created"
    # The stuck key after a pause is a person's press again: it opens a request.
    world.later(seconds=5)
    assert world.press().outcome == "created"


def test_a_redelivered_stuck_press_changes_nothing(world):
    world.press()
    press_every(world, 0.25, 7)
    world.later(seconds=0.25)
    last = world.press(event_id="e-last")
    run = world.repos.events.runs[("btn-1", "meal")]
    assert world.press(event_id="e-last").outcome == "duplicate"
    assert world.repos.events.runs[("btn-1", "meal")] == run and last.outcome == "stuck"
