"""Row locks and database timers: two replicas never over-assign, timers act once, a restarted
component resumes the clocks and the queue it left behind."""

import threading
from datetime import timedelta

from homecare.contract.models import Service
from homecare.errors import Conflict
from services.dispatch.store import outbox
from services.dispatch.store.transactions import PostgresTransactions
from services.dispatch.usecases.context import Dispatch, utc_now
from services.dispatch.usecases.intake import phoned
from services.dispatch.usecases.progress import assign_manually, cancel
from services.dispatch.workers.timers import TimerLoop
from tests.support import unique, wait_for

from .conftest import close_everything
from .harness import button_event, get_request, kinds, new_provider, new_resident, pending_offer, press, steps

ACTOR = "dispatcher:tests"


def open_by_phone(pool, ctx, service="meal") -> str:
    with pool.connection() as conn:
        return phoned(conn, ctx, new_resident(pool), Service(service), None, ACTOR).request_id


def test_two_replicas_cannot_over_assign_a_provider(pool, clean):
    ctx = Dispatch()
    requests = [open_by_phone(pool, ctx) for _ in range(2)]  # nobody on shift yet: both escalated
    carer = new_provider(pool, capacity=1)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def assign(request_id: str) -> None:
        try:
            with pool.connection() as conn:
                barrier.wait(5)
                assign_manually(conn, ctx, request_id, carer["id"], ACTOR)
            outcomes.append("assigned")
        except Conflict as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=assign, args=(rid,)) for rid in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["assigned", f"provider {carer['id']} has no free capacity"]
    statuses = sorted(get_request(pool, rid)["status"] for rid in requests)
    assert statuses == ["assigned", "escalated"]


def test_a_second_replica_skips_timers_the_first_holds(pool, clean):
    ctx = Dispatch()
    new_provider(pool, km=1)
    new_provider(pool, km=2)
    request_id = open_by_phone(pool, ctx)
    # Past the 60-second offer deadline, before the meal SLA and before the providers (whose apps
    # are not simulated here) count as unreachable.
    later = utc_now() + timedelta(minutes=2)
    offer = pending_offer(get_request(pool, request_id))

    with pool.connection() as holder:  # replica A holds the request row
        holder.execute("SELECT 1 FROM dispatch.requests WHERE id = %s FOR UPDATE", (request_id,))
        fired = TimerLoop(PostgresTransactions(pool), ctx).tick(now=later)  # replica B
        assert fired["offers_expired"] == 0
        holder.rollback()
    fired = TimerLoop(PostgresTransactions(pool), ctx).tick(now=later)
    assert fired["offers_expired"] >= 1
    request = get_request(pool, request_id)
    assert [o["status"] for o in request["offers"]][:1] == ["expired"]
    assert request["offers"][0]["id"] == offer["id"]
    assert pending_offer(request)["provider_id"] != offer["provider_id"]


def test_timer_escalates_overdue_and_flags_late_with_an_injected_clock(pool, clean):
    ctx = Dispatch()
    new_provider(pool, services=("emergency",), km=1)
    new_provider(pool, services=("emergency",), km=2)
    request_id = open_by_phone(pool, ctx, "emergency")
    created = get_request(pool, request_id)["created_at"]
    timers = TimerLoop(PostgresTransactions(pool), ctx)
    timers.tick(now=created + timedelta(seconds=30))  # offer still open, SLA not due
    assert get_request(pool, request_id)["status"] == "offered"
    # At 0:46 the first offer (45 s) has lapsed: the second provider is asked.
    TimerLoop(PostgresTransactions(pool), ctx).tick(now=created + timedelta(seconds=46))
    assert [o["status"] for o in get_request(pool, request_id)["offers"]] == ["expired", "pending"]
    # At 1:16 the 2-minute assignment target is 45 s away: rung 1, and for an emergency rung 2.
    TimerLoop(PostgresTransactions(pool), ctx).tick(now=created + timedelta(minutes=1, seconds=16))
    request = get_request(pool, request_id)
    assert request["status"] == "escalated"
    assert steps(request)[-1]["detail"]["reason"].startswith("assignment target approaching")
    assert kinds(request).count("sla.at_risk") == 1
    # The second offer lapses; nobody is left to ask (nobody is asked twice): it waits, escalated,
    # for a provider or a dispatcher.
    TimerLoop(PostgresTransactions(pool), ctx).tick(now=created + timedelta(minutes=1, seconds=32))
    request = get_request(pool, request_id)
    assert [o["status"] for o in request["offers"]] == ["expired", "expired"]
    assert request["status"] == "escalated"

    carer = new_provider(pool, services=("emergency",), km=3)
    with pool.connection() as conn:
        assign_manually(conn, ctx, request_id, carer["id"], ACTOR)
    after_target = get_request(pool, request_id)["sla_due_at"] + timedelta(seconds=1)
    for _ in range(2):
        TimerLoop(PostgresTransactions(pool), ctx).tick(now=after_target)
    request = get_request(pool, request_id)
    assert request["status"] == "assigned" and request["late_flagged_at"] == after_target
    assert request["sla_at_risk_at"] < after_target  # flagged first while it waited
    assert kinds(request).count("sla.at_risk") == 2


def test_a_queue_pass_tries_one_request_of_a_service_whose_providers_are_all_busy(pool, clean):
    close_everything(pool)  # what earlier tests left open would be walked too
    ctx = Dispatch()
    cook = new_provider(pool, services=("meal",), capacity=1)
    driver = new_provider(pool, services=("mobility",), capacity=1)
    first_meal, first_ride = open_by_phone(pool, ctx, "meal"), open_by_phone(pool, ctx, "mobility")
    with pool.connection() as conn:
        assign_manually(conn, ctx, first_meal, cook["id"], ACTOR)
        assign_manually(conn, ctx, first_ride, driver["id"], ACTOR)
    meals = [open_by_phone(pool, ctx, "meal") for _ in range(3)]
    ride = open_by_phone(pool, ctx, "mobility")
    assert {get_request(pool, rid)["status"] for rid in (*meals, ride)} == {"open"}

    def tried(at) -> set[str]:
        with pool.connection() as conn:
            rows = conn.execute("SELECT id FROM dispatch.requests WHERE retry_at = %s",
                                (at + ctx.requeue,)).fetchall()
        return {r["id"] for r in rows}

    later = utc_now() + timedelta(minutes=1)
    TimerLoop(PostgresTransactions(pool), ctx).tick(now=later)
    assert tried(later) == {meals[0], ride}, "the most urgent of each service only"

    with pool.connection() as conn:  # the cook is free again: the next pass offers the first meal
        cancel(conn, ctx, first_meal, "tests", ACTOR)
    again = later + ctx.requeue
    TimerLoop(PostgresTransactions(pool), ctx).tick(now=again)
    assert pending_offer(get_request(pool, meals[0]))["provider_id"] == cook["id"]
    assert tried(again) == {meals[1], ride}  # the cook has an offer pending now: busy again


def test_phone_request_notifies_the_residents_button_found_in_the_registry(pool, clean):
    from gateway import registry

    ctx = Dispatch()
    resident = new_resident(pool)
    button = unique("btn")
    with pool.connection() as conn:
        registry.provision(conn, button, "button", resident)
        registry.provision(conn, unique("bed"), "bed", resident)
        request_id = phoned(conn, ctx, resident, Service.MEAL, "fell asleep waiting", ACTOR).request_id
        rows = outbox.for_device(conn, button)
    assert [(r["type"], r["state"], r["held"]) for r in rows] == [("request.acknowledged", "queued", True)]
    assert rows[0]["payload"]["request_id"] == request_id  # the mqtt-v1 command itself


def test_phone_request_for_a_resident_without_a_button_says_so(pool, clean):
    ctx = Dispatch()
    request_id = open_by_phone(pool, ctx)
    request = get_request(pool, request_id)
    assert "not_notified" in kinds(request)
    assert request["commands"] == []


def test_restart_resumes_offer_clocks_and_queued_presses(pool, start_dispatch, bus):
    first = start_dispatch(policies={"meal": {"offer_timeout_s": 2}})
    resident = new_resident(pool)
    new_provider(pool, km=1)
    new_provider(pool, km=2)
    _, request_id = press(pool, bus, resident)  # acknowledged and offered
    first.stop()  # the pending offer's deadline passes while no replica runs

    later = unique("btn")
    bus.press(button_event(later, new_resident(pool), "meal"))  # queued in dispatch's persistent session
    start_dispatch(policies={"meal": {"offer_timeout_s": 2}})

    request = wait_for(lambda: (r := get_request(pool, request_id))["offers"][0]["status"] == "expired" and r,
                       timeout=15, what="the offer to expire after the restart")
    assert len(request["offers"]) == 2
    assert bus.command(later, "request.acknowledged", timeout=15)["service"] == "meal"
