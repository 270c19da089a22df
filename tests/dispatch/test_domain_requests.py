"""The request lifecycle: guarded transitions, timeline entries, coalescing."""

from datetime import UTC, datetime, timedelta

import pytest

from homecare.errors import Conflict, Forbidden
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.requests import (
    ACTIVE,
    MAX_URGENCY,
    TRANSITIONS,
    Source,
    Status,
    TransitionRefused,
    assign,
    check_actor_is_provider,
    open_request,
    press_again,
    transition,
)

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
POLICY = DispatchPolicy.default()


def new(service="meal"):
    request, _ = open_request("r-1", "res-1", service, POLICY.for_service(service), T0, "device:btn-1")
    return request


def test_open_request_starts_the_clocks_and_records_creation():
    request, entry = open_request(
        "r-1", "res-1", "emergency", POLICY.for_service("emergency"), T0, "device:btn-1",
        source=Source.BUTTON, device_id="btn-1", event_id="e-1",
    )
    assert request.status is Status.OPEN
    assert request.priority == 1
    assert request.assign_due_at == T0 + timedelta(minutes=2)
    assert request.sla_due_at == T0 + timedelta(minutes=45)
    assert request.device_id == "btn-1"
    assert entry.kind == "created"
    assert entry.actor == "device:btn-1"
    assert entry.detail == {"source": "button", "service": "emergency", "event_id": "e-1"}


def test_happy_path_open_offered_assigned_en_route_arrived_completed():
    r = new()
    steps = []
    change = transition(r, Status.OFFERED, T0, "system", "offer.made", provider_id="p-1")
    steps.append(change)
    change = assign(change.request, "p-1", 12, T0 + timedelta(seconds=30), "provider:p-1")
    steps.append(change)
    assert change.request.provider_id == "p-1"
    assert change.request.eta_minutes == 12
    assert change.request.assigned_at == T0 + timedelta(seconds=30)
    for to in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        change = transition(change.request, to, T0 + timedelta(minutes=5), "provider:p-1")
        steps.append(change)
    assert change.request.status is Status.COMPLETED
    assert [s.entry.kind for s in steps] == ["offer.made", "assigned", "en_route", "arrived", "completed"]
    assert [s.stamp for s in steps] == ["offered_at", "assigned_at", "en_route_at", "arrived_at", "completed_at"]
    assert steps[1].entry.detail == {"from": "offered", "provider_id": "p-1", "eta_minutes": 12}


@pytest.mark.parametrize("terminal", [Status.COMPLETED, Status.CANCELLED])
def test_terminal_states_refuse_everything(terminal):
    assert TRANSITIONS[terminal] == frozenset()
    r = new()
    r = transition(r, Status.CANCELLED, T0, "dispatcher:ann").request if terminal is Status.CANCELLED else r
    if terminal is Status.COMPLETED:
        r = assign(r, "p-1", 5, T0, "dispatcher:ann").request
        r = transition(r, Status.COMPLETED, T0, "provider:p-1").request
    for to in Status:
        with pytest.raises(TransitionRefused):
            transition(r, to, T0, "system")


def test_completing_a_cancelled_request_is_a_conflict_naming_the_states():
    r = transition(new(), Status.CANCELLED, T0, "device:btn-1", reason="resident cancelled").request
    with pytest.raises(Conflict, match="is cancelled; it cannot become completed"):
        transition(r, Status.COMPLETED, T0, "provider:p-1")


def test_cannot_complete_before_a_provider_is_assigned():
    with pytest.raises(TransitionRefused):
        transition(new(), Status.COMPLETED, T0, "provider:p-1")
    with pytest.raises(TransitionRefused):
        transition(new(), Status.ARRIVED, T0, "provider:p-1")


def test_arrived_can_only_complete():
    r = assign(new(), "p-1", 5, T0, "dispatcher:ann").request
    r = transition(r, Status.ARRIVED, T0, "provider:p-1").request
    assert r.can(Status.COMPLETED)
    assert not r.can(Status.CANCELLED)
    assert not r.can(Status.ASSIGNED)


def test_reassignment_names_the_previous_provider_and_keeps_status():
    r = assign(new(), "p-1", 5, T0, "dispatcher:ann").request
    change = assign(r, "p-2", 9, T0 + timedelta(minutes=1), "dispatcher:ann")
    assert change.entry.kind == "reassigned"
    assert change.entry.detail["previous_provider_id"] == "p-1"
    assert change.request.provider_id == "p-2"
    assert change.stamp is None  # still assigned; assigned_at of the first assignment is kept


def test_assigning_the_same_provider_twice_is_refused():
    r = assign(new(), "p-1", 5, T0, "dispatcher:ann").request
    with pytest.raises(TransitionRefused, match="already assigned"):
        assign(r, "p-1", 5, T0, "dispatcher:ann")


def test_cancel_and_escalate_drop_the_provider():
    r = assign(new(), "p-1", 5, T0, "dispatcher:ann").request
    cancelled = transition(r, Status.CANCELLED, T0, "dispatcher:ann", reason="duplicate")
    assert cancelled.request.provider_id is None
    assert cancelled.entry.detail == {"from": "assigned", "reason": "duplicate"}


def test_escalated_request_can_be_assigned_by_hand_or_cancelled():
    r = transition(new(), Status.ESCALATED, T0, "system", reason="no provider").request
    assert r.can(Status.ASSIGNED) and r.can(Status.CANCELLED)
    assert r.can(Status.ESCALATED)  # an offer made while the dispatchers are told: it stays escalated
    assert not r.can(Status.COMPLETED) and not r.can(Status.OFFERED)


def test_press_again_raises_urgency_up_to_a_cap():
    r = new()
    urgencies = []
    for i in range(MAX_URGENCY + 2):
        change = press_again(r, T0 + timedelta(seconds=i), "device:btn-1", event_id=f"e{i}")
        r = change.request
        urgencies.append(r.urgency)
        assert change.entry.kind == "pressed_again"
        assert change.stamp is None
    assert urgencies == [2, 3, 4, 5, 5, 5, 5]
    assert r.status is Status.OPEN


def test_press_again_on_a_finished_request_is_refused():
    r = transition(new(), Status.CANCELLED, T0, "dispatcher:ann").request
    with pytest.raises(TransitionRefused):
        press_again(r, T0, "device:btn-1")


def test_only_the_assigned_provider_may_report_progress():
    r = assign(new(), "p-1", 5, T0, "dispatcher:ann").request
    check_actor_is_provider(r, "p-1")
    with pytest.raises(Forbidden):
        check_actor_is_provider(r, "p-2")


def test_active_states_are_every_non_terminal_state():
    assert ACTIVE == {Status.OPEN, Status.OFFERED, Status.ASSIGNED, Status.EN_ROUTE, Status.ARRIVED, Status.ESCALATED}
