"""Button events on the internal topics open, join and cancel requests; the button is told."""

import time

from prometheus_client import REGISTRY

from homecare.internal import OpenRequest
from services.dispatch import metrics
from services.dispatch.usecases.intake import button_pressed
from tests.support import unique, wait_for

from .harness import button_event, escalation, get_request, kinds, new_provider, new_resident, request_of


def test_press_opens_a_request_acknowledges_the_button_and_offers_the_nearest(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    near = new_provider(pool, km=1)
    new_provider(pool, km=6)
    device = unique("btn")

    bus.press(button_event(device, resident, "meal"))

    ack = bus.command(device, "request.acknowledged")
    # Acknowledged when stored, offered right after by the timer loop (woken by the intake).
    request = wait_for(lambda: (r := request_of(pool, resident)) and r["status"] == "offered" and r,
                       what="request offered")
    assert ack["request_id"] == request["id"] and ack["request_id"].startswith("r-")
    assert ack["service"] == "meal" and ack["command_id"].startswith("c-")
    assert request["status"] == "offered"
    assert request["source"] == "button" and request["device_id"] == device
    assert request["priority"] == 3 and request["urgency"] == 1
    assert request["acknowledged_at"] is not None
    offer = next(o for o in request["offers"] if o["status"] == "pending")
    assert offer["provider_id"] == near["id"]
    assert kinds(request)[:3] == ["created", "notified", "offer.made"]
    assert request["timeline"][1]["detail"]["command_id"] == ack["command_id"]


def test_a_press_is_offered_at_once_not_at_the_timer_loops_next_tick(pool, start_dispatch, bus):
    # The timer loop's tick is a minute away: only the intake's wake-up can make this offer.
    start_dispatch(timer_interval_s=60)
    resident = new_resident(pool)
    new_provider(pool, km=1)
    device = unique("btn")
    time.sleep(0.5)  # the loop is asleep until its first tick

    bus.press(button_event(device, resident, "meal"))

    ack = bus.command(device, "request.acknowledged")
    request = wait_for(lambda: (r := request_of(pool, resident)) and r["status"] == "offered" and r,
                       timeout=10, what="the press offered before the tick")
    assert request["id"] == ack["request_id"]
    assert kinds(request)[:3] == ["created", "notified", "offer.made"]


def test_a_request_left_unoffered_by_a_replica_that_died_is_offered_by_the_next_tick(pool, start_dispatch):
    # The press was committed (acknowledged) and its replica died before the wake-up's offer.
    resident = new_resident(pool)
    provider = new_provider(pool, km=1)
    component = start_dispatch(timer_interval_s=60)
    component.timers.stop()
    with pool.connection() as conn, conn.transaction():
        intake_result = button_pressed(conn, component.ctx, button_event(unique("btn"), resident, "meal"))
    assert intake_result.outcome == "created"
    assert get_request(pool, intake_result.request_id)["status"] == "open"

    fired = component.timers.tick()

    assert fired["offered_fresh"] == 1
    request = get_request(pool, intake_result.request_id)
    assert request["status"] == "offered" and request["offers"][0]["provider_id"] == provider["id"]


def test_second_press_joins_the_open_request_and_raises_urgency(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool)
    device = unique("btn")

    bus.press(button_event(device, resident, "meal"))
    first = bus.command(device, "request.acknowledged")
    bus.press(button_event(device, resident, "meal"))
    second = bus.command(device, "request.acknowledged")

    assert second["request_id"] == first["request_id"]
    assert second["command_id"] != first["command_id"]
    request = get_request(pool, first["request_id"])
    assert request["urgency"] == 2
    assert kinds(request).count("pressed_again") == 1
    assert kinds(request).count("created") == 1
    # Another service is another request.
    bus.press(button_event(device, resident, "bathing"))
    bathing = bus.command(device, "request.acknowledged")
    assert bathing["request_id"] != first["request_id"]


def test_a_redelivered_event_has_no_second_effect(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool)
    device = unique("btn")
    event = button_event(device, resident, "meal")
    duplicates = metrics.EVENTS.labels("button.pressed", "duplicate")
    before = duplicates._value.get()

    bus.press(event)
    ack = bus.command(device, "request.acknowledged")
    bus.press(event)  # same event_id: a QoS 1 redelivery
    wait_for(lambda: duplicates._value.get() > before, what="the duplicate to be consumed")

    request = get_request(pool, ack["request_id"])
    assert request["urgency"] == 1
    assert "pressed_again" not in kinds(request)
    assert [c["type"] for c in bus.commands_for(device)] == []  # no second acknowledgement


def test_long_press_cancels_the_open_request(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool)
    device = unique("btn")

    bus.press(button_event(device, resident, "meal"))
    ack = bus.command(device, "request.acknowledged")
    bus.press(button_event(device, resident, "meal", type_="button.cancelled"))
    cancelled = bus.command(device, "request.cancelled")

    assert cancelled["request_id"] == ack["request_id"]
    assert cancelled["reason"] == "cancelled by the resident"
    request = get_request(pool, ack["request_id"])
    assert request["status"] == "cancelled" and request["cancelled_at"] is not None
    assert [o["status"] for o in request["offers"]] == ["withdrawn"]
    assert {"offer.withdrawn", "cancelled"} <= set(kinds(request))


def test_no_qualified_provider_escalates_at_once(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool, services=("meal",))  # nobody for escorts
    device = unique("btn")

    bus.press(button_event(device, resident, "escort"))
    ack = bus.command(device, "request.acknowledged")
    request = wait_for(lambda: (r := get_request(pool, ack["request_id"]))["status"] == "escalated" and r,
                       what="the request escalated")
    assert escalation(request)["detail"]["reason"] == "no qualified provider on shift for escort"


def test_open_request_message_opens_an_emergency_once(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    medic = new_provider(pool, services=("emergency",))
    message = OpenRequest(
        source="alert", source_id=unique("alert"), resident_id=resident, service="emergency",
        reason="fall suspected (confidence 0.92)", device_id=unique("bed"),
    )
    bus.open_request(message)
    request = wait_for(lambda: request_of(pool, resident, "emergency"), what="emergency request")
    assert request["source"] == "alert" and request["priority"] == 1
    assert request["note"] == "fall suspected (confidence 0.92)"
    assert pending_provider(request) == medic["id"]

    bus.open_request(message)  # stored twice in the log: still one request
    wait_for(lambda: metrics.EVENTS.labels("open-request", "duplicate")._value.get() >= 1, what="duplicate seen")
    with pool.connection() as conn:
        n = conn.execute(
            "SELECT count(*) AS n FROM dispatch.requests WHERE resident_id = %s", (resident,)
        ).fetchone()["n"]
    assert n == 1


def pending_provider(request):
    return next(o["provider_id"] for o in request["offers"] if o["status"] == "pending")


def test_metrics_count_presses_acks_and_offers(pool, start_dispatch, bus):
    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool)
    device = unique("btn")

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    acks_before = sample("dispatch_press_to_ack_seconds_count")
    offers_before = sample("dispatch_offers_total", outcome="made")
    bus.press(button_event(device, resident, "meal"))
    bus.command(device, "request.acknowledged")
    wait_for(lambda: sample("dispatch_press_to_ack_seconds_count") > acks_before, what="press-to-ack observed")
    # The offer is made by the timer loop right after the acknowledgement's commit, not in it.
    wait_for(lambda: sample("dispatch_offers_total", outcome="made") > offers_before, what="offer counted")
    assert sample("dispatch_offers_total", outcome="made") == offers_before + 1
    wait_for(lambda: sample("dispatch_requests", status="offered") >= 1, timeout=15, what="status gauge")


def test_a_stuck_buttons_presses_through_the_log_mark_the_request_and_leave_its_urgency(pool, start_dispatch, bus):
    """On PostgreSQL through the real consumer: 4 presses a second (device time) for 8 s."""
    from datetime import timedelta

    from homecare.auth import Role
    from services.dispatch.api import build_router
    from services.dispatch.usecases.context import Dispatch

    from .harness import api_client, token_for

    start_dispatch()
    resident = new_resident(pool)
    new_provider(pool)
    device = unique("btn")
    first = button_event(device, resident, "meal")
    presses = [first] + [
        button_event(device, resident, "meal").model_copy(update={"ts": first.ts + timedelta(seconds=0.25 * n)})
        for n in range(1, 33)
    ]
    stuck = metrics.PRESSES_STUCK.labels("meal")
    before = stuck._value.get()
    for event in presses:
        bus.press(event)
    request_id = bus.command(device, "request.acknowledged")["request_id"]
    request = wait_for(lambda: (r := get_request(pool, request_id))["stuck_presses"] == 33 and r,
                       what="every press handled")
    assert stuck._value.get() - before >= 13  # judged at 5 s: the 21st press and the 12 after it
    assert request["urgency"] == 1
    assert kinds(request).count("button_stuck") == 1
    entry = next(e for e in request["timeline"] if e["kind"] == "button_stuck")
    assert entry["detail"]["reason"].startswith("button stuck: ") and entry["detail"]["urgency"] == 1
    assert request["stuck_presses"] == 33 and request["stuck_from"] == first.ts
    assert request["stuck_to"] == presses[-1].ts
    # The API shows the mark beside the urgency.
    client = api_client(pool, build_router(Dispatch()))
    shown = client.get(f"/api/v1/requests/{request_id}", headers=token_for(pool, Role.CITY)).json()
    assert (shown["urgency"], shown["stuck_presses"]) == (1, 33)
    assert any(e["kind"] == "button_stuck" for e in shown["timeline"])
