"""The stuck limit a consumer's description carries on the server, and when a consumer is stuck
and since when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from homecare.log.health import ConsumerState, describe, read_description

NOW = datetime(2026, 3, 1, 3, 12, tzinfo=UTC)


def state(consumer: str = "dispatch-buttons", age: float = 0.0, limit: float = 60.0, title: str = "Button presses"):
    return ConsumerState(consumer=consumer, stream="EVENTS", title=title, lag=3, ack_pending=1,
                         oldest_unacked_s=age, stuck_after_s=limit, checked_at=NOW)


@pytest.mark.parametrize("title, limit", [("Button presses", 60.0), ("Bed sensor readings", 0.5), ("x", 3600.0)])
def test_a_description_carries_the_title_and_limit(title, limit):
    assert read_description(describe(title, limit)) == (title, limit)


@pytest.mark.parametrize("description", [None, "", "made by hand", "[stuck after soon s]", "[stuck after -5 s]",
                                         "[stuck after 1e309 s]", "[stuck after 60 s] and more"])
def test_a_description_without_a_limit_gives_none(description):
    assert read_description(description)[1] is None


def test_stuck_only_past_the_limit_and_since_the_limit_was_passed():
    assert not state(age=60.0).stuck and state(age=60.0).stuck_since is None
    late = state(age=95.0)
    assert late.stuck and late.stuck_since == NOW - timedelta(seconds=35)
