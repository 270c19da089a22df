"""The alert lifecycle, pure: open -> acknowledged -> resolved, assignment, conflicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from homecare.errors import Conflict, Invalid
from services.telemetry.domain import lifecycle

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
OPEN = lifecycle.AlertState("al-1", "open")


def test_open_acknowledged_resolved():
    acked = lifecycle.acknowledge(OPEN, "dispatcher:wang", NOW)
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == ("acknowledged", "dispatcher:wang", NOW)
    done = lifecycle.resolve(acked, "dispatcher:li", NOW, "resident is fine")
    assert (done.state, done.resolved_by, done.resolution_note) == ("resolved", "dispatcher:li", "resident is fine")
    assert done.acknowledged_by == "dispatcher:wang"


def test_an_open_alert_can_be_resolved_directly():
    assert lifecycle.resolve(OPEN, "admin:root", NOW, None).state == "resolved"


def test_invalid_transitions_are_conflicts():
    acked = lifecycle.acknowledge(OPEN, "d", NOW)
    resolved = lifecycle.resolve(acked, "d", NOW, None)
    with pytest.raises(Conflict, match="only an open alert"):
        lifecycle.acknowledge(acked, "d", NOW)
    with pytest.raises(Conflict):
        lifecycle.acknowledge(resolved, "d", NOW)
    with pytest.raises(Conflict, match="already resolved"):
        lifecycle.resolve(resolved, "d", NOW, None)
    with pytest.raises(Conflict):
        lifecycle.assign(resolved, "Li Mei")


def test_assignment_keeps_the_state_and_needs_a_name():
    assert lifecycle.assign(OPEN, " Li Mei ") == lifecycle.AlertState("al-1", "open", assignee="Li Mei")
    assert lifecycle.assign(lifecycle.acknowledge(OPEN, "d", NOW), "Zhang").state == "acknowledged"
    with pytest.raises(Invalid):
        lifecycle.assign(OPEN, "  ")
