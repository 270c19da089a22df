"""The SLA report (percentiles of each step, targets met, per service, district and day, CSV and
API) on requests driven through the use cases with a set clock; and the candidates read model."""

import csv
import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from homecare.auth import Role
from homecare.contract.models import Service
from homecare.residents import store as residents
from services.dispatch import queries
from services.dispatch.api import build_router
from services.dispatch.domain.requests import Status
from services.dispatch.settings import DispatchSettings
from services.dispatch.usecases.context import Dispatch
from services.dispatch.usecases.intake import phoned
from services.dispatch.usecases.offering import accept_offer, decline_offer
from services.dispatch.usecases.progress import advance, cancel

from .harness import HOME, api_client, get_request, new_provider, pending_offer, token_for

EPOCH = datetime(2001, 3, 4, 8, 0, tzinfo=UTC)  # no other test makes requests in 2001
_WEEKS = itertools.count()
ACTOR = "dispatcher:report-tests"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def resident_in(pool, district: str) -> str:
    body = residents.NewResident(
        name=f"Resident {uuid.uuid4().hex[:6]}", address="2 Report Road", district=district,
        location=residents.Location(lat=HOME.lat, lon=HOME.lon),
    )
    with pool.connection() as conn:
        return residents.enrol(conn, body).id


def run(pool, ctx, clock, created, service, district, steps):
    """Open a request at `created`, then do (minutes after creation, action) steps."""
    clock.at = created
    with pool.connection() as conn:
        request_id = phoned(conn, ctx, resident_in(pool, district), Service(service), None, ACTOR).request_id
    for minutes, action in steps:
        clock.at = created + timedelta(minutes=minutes)
        with pool.connection() as conn:
            request = get_request(pool, request_id)
            if action == "accept":
                offer = pending_offer(request)
                accept_offer(conn, ctx, offer["id"], offer["provider_id"], f"provider:{offer['provider_id']}")
            elif action == "cancel":
                cancel(conn, ctx, request_id, "not needed any more", ACTOR)
            else:
                advance(conn, ctx, request_id, Status(action), ACTOR)
    return request_id


@pytest.fixture
def history(pool, clean):
    """Five requests of two districts over two days, with known step times, in a week of their own."""
    base = EPOCH + timedelta(weeks=next(_WEEKS))
    clock = Clock(base)
    ctx = Dispatch(clock=clock)
    new_provider(pool, services=("meal", "mobility"), km=1, capacity=5)
    tag = uuid.uuid4().hex[:6]
    north, south = f"North-{tag}", f"South-{tag}"
    run(pool, ctx, clock, base, "meal", north, [(0.5, "accept"), (20, "arrived"), (35, "completed")])
    run(pool, ctx, clock, base + timedelta(minutes=10), "meal", north,
        [(0.75, "accept"), (70, "arrived"), (80, "completed")])  # arrives 10 minutes late
    run(pool, ctx, clock, base + timedelta(minutes=20), "meal", north, [(5, "cancel")])  # withdrawn: not judged
    run(pool, ctx, clock, base + timedelta(minutes=30), "meal", north, [])  # never taken: misses both targets
    run(pool, ctx, clock, base + timedelta(days=1), "mobility", south,
        [(0.5, "accept"), (10, "arrived"), (25, "completed")])
    return base, north, south


def report(pool, base, *args, **kw):
    with pool.connection() as conn:
        return queries.sla_report(conn, base, base + timedelta(days=2), *args, now=base + timedelta(days=3), **kw)


def test_per_service_and_district_counts_percentiles_and_targets(pool, history):
    base, north, south = history
    rows = {(r["service"], r["district"]): r for r in report(pool, base)}
    assert set(rows) == {("meal", north), ("mobility", south)}
    meal = rows[("meal", north)]
    assert (meal["requests"], meal["completed"], meal["cancelled"], meal["active"]) == (4, 2, 1, 1)
    assert (meal["ack_judged"], meal["ack_met"]) == (4, 4)
    assert (meal["assign_judged"], meal["assign_met"]) == (3, 2)  # the cancelled one is not judged
    assert (meal["arrive_judged"], meal["arrive_met"], meal["met"]) == (3, 1, 1)
    assert meal["met_share"] == pytest.approx(1 / 3, abs=1e-4)
    # assigned -> arrived: 1170 and 4155 seconds; percentile_cont interpolates between them.
    assert meal["step_arrived_p50_s"] == pytest.approx((1170 + 4155) / 2, abs=0.1)
    assert meal["step_arrived_p90_s"] == pytest.approx(1170 + 0.9 * 2985, abs=0.1)
    assert meal["step_arrived_p99_s"] == pytest.approx(1170 + 0.99 * 2985, abs=0.1)
    assert meal["step_assigned_p50_s"] == pytest.approx(37.5)  # 30 s and 45 s after the acknowledgement
    assert meal["step_completed_p50_s"] == pytest.approx(750)
    assert meal["total_arrived_p50_s"] == pytest.approx(2700)
    assert meal["step_acknowledged_p50_s"] == 0.0 and meal["step_shown_p50_s"] is None  # no button
    mobility = rows[("mobility", south)]
    assert (mobility["requests"], mobility["met"], mobility["met_share"]) == (1, 1, 1.0)
    assert mobility["total_completed_p99_s"] == pytest.approx(1500)


def test_per_day_totals_and_filters(pool, history):
    base, north, south = history
    days = report(pool, base, True, by=())
    first, second = base.date().isoformat(), (base + timedelta(days=1)).date().isoformat()
    assert [(r["day"], r["service"], r["district"], r["requests"]) for r in days] == [
        (first, None, None, 4), (second, None, None, 1),
    ]
    assert [r["met_share"] for r in days] == [pytest.approx(1 / 3, abs=1e-4), 1.0]
    assert [r["requests"] for r in report(pool, base, service="mobility")] == [1]
    assert [r["district"] for r in report(pool, base, district=north)] == [north]
    assert report(pool, base, district="Nowhere") == []
    with pytest.raises(ValueError, match="unknown dimension"):
        report(pool, base, by=("colour",))


def test_report_as_csv_and_through_the_api(pool, history):
    base, north, _ = history
    rows = report(pool, base, True)
    parsed = list(csv.DictReader(io.StringIO(queries.sla_csv(rows))))
    assert list(parsed[0]) == queries.sla_columns()
    assert [(r["day"], r["district"], r["requests"]) for r in parsed][0] == (base.date().isoformat(), north, "4")

    client = api_client(pool, build_router(Dispatch(clock=Clock(base + timedelta(days=3)))))
    headers = token_for(pool, Role.CITY)
    params = {"start": base.isoformat(), "end": (base + timedelta(days=2)).isoformat(), "district": north}
    body = client.get("/api/v1/reports/sla", params=params, headers=headers)
    assert body.status_code == 200, body.text
    (group,) = body.json()["groups"]
    assert group["service"] == "meal" and group["met"] == 1
    assert group["step_arrived_p50_s"] == pytest.approx(2662.5, abs=0.1)
    text = client.get("/api/v1/reports/sla", params={**params, "format": "csv", "by_day": True}, headers=headers)
    assert text.headers["content-type"].startswith("text/csv") and text.text.startswith("day,service,district,")
    assert client.get("/api/v1/reports/sla", params={**params, "service": "laundry"},
                      headers=headers).status_code == 422
    carer = new_provider(pool)
    provider = token_for(pool, Role.PROVIDER, carer["id"])
    assert client.get("/api/v1/reports/sla", params=params, headers=provider).status_code == 403


def test_candidates_rank_who_can_take_it_and_say_why_the_others_cannot(pool, clean):
    ctx = Dispatch()
    near = new_provider(pool, services=("meal",), km=1, capacity=2, name="Near")
    declined = new_provider(pool, services=("meal",), km=0.5, capacity=2, name="Declined")
    second = new_provider(pool, services=("meal",), km=3, capacity=2, name="Second")
    full = new_provider(pool, services=("meal",), km=0.2, capacity=1, name="Full")
    bather = new_provider(pool, services=("bathing",), km=0.1, name="Bather")
    with pool.connection() as conn:
        filler = phoned(conn, ctx, resident_in(pool, "Fill"), Service.MEAL, None, ACTOR).request_id
    offer = pending_offer(get_request(pool, filler))
    assert offer["provider_id"] == full["id"]
    with pool.connection() as conn:
        accept_offer(conn, ctx, offer["id"], full["id"], "provider:x")
        request_id = phoned(conn, ctx, resident_in(pool, "Cand"), Service.MEAL, None, ACTOR).request_id
    offer = pending_offer(get_request(pool, request_id))
    assert offer["provider_id"] == declined["id"]
    with pool.connection() as conn:
        decline_offer(conn, ctx, offer["id"], declined["id"], "provider:x")
        rows = queries.candidates(conn, DispatchSettings(), request_id)

    mine = {near["id"], declined["id"], second["id"], full["id"], bather["id"]}
    rows = [r for r in rows if r["provider_id"] in mine]
    # Ranked first; then the qualified ones that cannot take it, soonest first; then the rest.
    assert [r["name"] for r in rows] == ["Near", "Second", "Declined", "Full", "Bather"]
    top = rows[0]
    assert top["rank"] == 1 and top["eligible"] and top["offered_now"] and top["reason"] is None
    assert top["eta_minutes"] == 3 and top["qualified"] and top["on_shift"] and top["free_capacity"] == 1
    assert top["pending_offers"] == 1 and top["load"] == 0 and top["capacity"] == 2
    assert set(top["components"]) == {"travel", "wait", "load", "fairness", "continuity", "preempt", "route"}
    assert top["score"] == pytest.approx(sum(top["components"].values()), abs=0.05)
    assert top["score"] == pytest.approx(pending_offer(get_request(pool, request_id))["score"], abs=0.01)
    assert rows[1]["rank"] == 2
    assert rows[2]["reason"] == "already declined or let an offer expire"
    assert (rows[3]["reason"], rows[3]["load"], rows[3]["eligible"]) == ("no free capacity", 1, False)
    assert rows[3]["wait_minutes"] > 10  # it has a visit to make first
    assert (rows[4]["qualified"], rows[4]["reason"], rows[4]["score"]) == (False, "does not provide meal", None)
