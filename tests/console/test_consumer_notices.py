"""The console's rules over consumer states: what a check changes given the open incidents, and
what dispatchers are told."""

from __future__ import annotations

from datetime import UTC, datetime

from console.consumer_watch import duration_text, notice, transitions
from homecare.log.health import ConsumerState


def state(consumer: str = "dispatch-buttons", age: float = 0.0, title: str = "Button presses") -> ConsumerState:
    return ConsumerState(consumer=consumer, stream="EVENTS", title=title, lag=3, ack_pending=1,
                         oldest_unacked_s=age, stuck_after_s=60.0, checked_at=datetime.now(UTC))


def test_a_check_raises_keeps_and_clears():
    raised, ongoing, recovered = transitions(
        [state("a", age=90), state("b", age=90), state("c", age=1)], open_consumers=["b", "c", "gone"])
    assert [s.consumer for s in raised] == ["a"]
    assert [s.consumer for s in ongoing] == ["b"]
    assert recovered == ["c", "gone"]  # a consumer deleted while stuck is no longer stuck


def test_what_a_dispatcher_is_told():
    assert notice(state(age=95)) == ("Button presses are delayed: dispatch-buttons has a message waiting 95 s"
                                     " (limit 60 s).")
    assert notice(state(age=250, title="dispatch-buttons")) == (
        "dispatch-buttons is behind: a message has waited 4 min 10 s (limit 60 s).")
    assert [duration_text(s) for s in (0.4, 119, 120, 3599, 7500, -3)] == [
        "0 s", "119 s", "2 min", "59 min 59 s", "2 h 5 min", "0 s"]
