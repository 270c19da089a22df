"""Simulated providers against a hand-written fake of the http-v1 dispatch endpoints.

The real platform is exercised in test_against_platform.py; this fake adds the situations a
short real run rarely shows: an offer that expired, a token that expired, no en-route endpoint.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx

from devices.simulator.crew import ProviderCrew
from devices.simulator.providers import ProviderPolicy, app_losses
from devices.simulator.roster import EnrolledProvider
from devices.simulator.scenario import ProviderConduct, Scenario
from devices.simulator.stats import SimStats
from tests.support import wait_for


class FakeDispatch:
    """Offers for one provider; records every call in order."""

    def __init__(self, offers: list[dict]):
        self.offers = {o["id"]: o for o in offers}
        self.calls: list[tuple[str, str, int]] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            response = self._handle(request)
            self.calls.append((request.method, request.url.path, response.status_code))
            return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/api/v1/auth/token":
            form = dict(x.split("=") for x in request.content.decode().split("&"))
            if form != {"username": "provider-t-0000", "password": "pw-12345678"}:
                return httpx.Response(401, json={"detail": "wrong credentials"})
            self.tokens_issued += 1
            token = f"tok-{self.tokens_issued}"
            self.valid_tokens.add(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "bearer"})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return httpx.Response(401, json={"detail": "token unknown or expired"})
        if path == "/api/v1/offers":
            assert request.url.params["status"] == "pending"
            pending = [o for o in self.offers.values() if o["status"] == "pending"]
            if self.tokens_issued == 1 and len(self.calls) > 3:
                self.valid_tokens.clear()  # the first token expires after a few calls
            return httpx.Response(200, json=pending)
        parts = path.split("/")
        if parts[3] == "offers":
            offer = self.offers[parts[4]]
            if offer.get("expired"):
                offer["status"] = "expired"
                return httpx.Response(409, json={"detail": "offer expired"})
            offer["status"] = "accepted" if parts[5] == "accept" else "declined"
            if parts[5] == "decline":
                assert json.loads(request.content)["reason"]
            return httpx.Response(200, json={"id": offer["request_id"], "status": "assigned"})
        if parts[3] == "providers" and parts[5] == "heartbeat":
            return httpx.Response(200, json={"id": parts[4], "presence": "reachable"})
        if parts[3] == "requests" and parts[5] == "en-route":
            return httpx.Response(404, json={"detail": "Not Found"})
        if parts[3] == "requests" and parts[5] in ("arrived", "complete"):
            return httpx.Response(200, json={"id": parts[4], "status": parts[5]})
        return httpx.Response(500, json={"detail": f"unexpected {method} {path}"})


def _offer(n: int, service: str = "meal", **extra) -> dict:
    return {"id": f"o-{n}", "request_id": f"r-{n}", "status": "pending", "service": service,
            "resident_id": f"res-{n}", "eta_minutes": 10, **extra}


def test_providers_accept_travel_arrive_and_complete_in_order():
    fake = FakeDispatch([_offer(1), _offer(2, expired=True), _offer(3, "emergency")])
    login = EnrolledProvider(index=0, id="p-1", name="Li Mei", services=["meal", "emergency"], lat=31.23,
                             lon=121.47, capacity=3, username="provider-t-0000", password="pw-12345678")
    conduct = ProviderConduct(accept_rate=1.0, ignore_rate=0.0, decide_after_s=(30, 60))
    policy = ProviderPolicy(login.name, (login.lat, login.lon), login.capacity, conduct, seed=1)
    stats = SimStats()
    crew = ProviderCrew("http://platform.test", [(login, policy)], speed=600, stats=stats,
                        poll_interval_s=0.05, transport=httpx.MockTransport(fake.handler))
    started = time.monotonic()
    crew.start()
    try:
        wait_for(lambda: stats.get("requests_completed") == 2, timeout=15, what="two requests completed")
    finally:
        crew.stop()
    elapsed = time.monotonic() - started
    # travel of ~10 minutes and at least 10 minutes of service, at 600x: two seconds or more
    assert elapsed > 1.5
    for n in (1, 3):
        mine = [c for c in fake.calls
                if c[2] != 401 and c[1].endswith((f"o-{n}/accept", f"r-{n}/arrived", f"r-{n}/complete"))]
        assert [c[1].rsplit("/", 1)[-1] for c in mine] == ["accept", "arrived", "complete"]
    assert not [c for c in fake.calls if "r-2/" in c[1]], "no work on an expired offer"
    assert stats.get("offers_accepted") == 2 and stats.get("offer_conflicts") == 1
    assert stats.get("provider_errors") == 0
    assert fake.tokens_issued == 2, "signed in again when the token expired"
    assert len([c for c in fake.calls if c[1].endswith("/en-route")]) == 1, "a missing en-route is tried once"


def test_a_provider_at_capacity_declines():
    fake = FakeDispatch([_offer(1), _offer(2)])
    login = EnrolledProvider(index=0, id="p-1", name="Li Mei", services=["meal"], lat=31.23, lon=121.47,
                             capacity=1, username="provider-t-0000", password="pw-12345678")
    conduct = ProviderConduct(accept_rate=1.0, ignore_rate=0.0, decide_after_s=(0, 0))
    policy = ProviderPolicy(login.name, (login.lat, login.lon), login.capacity, conduct, seed=1)
    stats = SimStats()
    crew = ProviderCrew("http://platform.test", [(login, policy)], speed=60, stats=stats,
                        poll_interval_s=0.05, transport=httpx.MockTransport(fake.handler))
    crew.start()
    try:
        wait_for(lambda: stats.get("offers_declined") == 1, timeout=10, what="one offer declined")
    finally:
        crew.stop()
    assert stats.get("offers_accepted") == 1
    assert sorted(o["status"] for o in fake.offers.values()) == ["accepted", "declined"]


def _login() -> EnrolledProvider:
    return EnrolledProvider(index=0, id="p-1", name="Li Mei", services=["meal"], lat=31.23, lon=121.47,
                            capacity=2, username="provider-t-0000", password="pw-12345678")


def test_the_app_beats_while_it_is_there():
    fake = FakeDispatch([])
    login = _login()
    policy = ProviderPolicy(login.name, (login.lat, login.lon), login.capacity, ProviderConduct(), seed=1)
    stats = SimStats()
    crew = ProviderCrew("http://platform.test", [(login, policy)], speed=60, stats=stats, poll_interval_s=0.05,
                        heartbeat_s=0.05, transport=httpx.MockTransport(fake.handler))
    crew.start()
    try:
        wait_for(lambda: stats.get("heartbeats") >= 3, timeout=10, what="three heartbeats")
    finally:
        crew.stop()
    beats = [c for c in fake.calls if c[1] == "/api/v1/providers/p-1/heartbeat" and c[2] != 401]  # the fake's
    assert len(beats) >= 3 and all(status == 200 for _, _, status in beats)  # first token expires: signed in again
    assert stats.get("provider_errors") == 0 and stats.get("provider_apps_lost") == 0


def test_a_provider_whose_app_goes_away_stops_beating_polling_and_answering():
    fake = FakeDispatch([])
    login = _login()
    conduct = ProviderConduct(accept_rate=1.0, ignore_rate=0.0, decide_after_s=(0, 0))
    # At 600x, the app goes away 0.2 real seconds in.
    policy = ProviderPolicy(login.name, (login.lat, login.lon), login.capacity, conduct, seed=1,
                            app_lost_after_s=120.0)
    stats = SimStats()
    crew = ProviderCrew("http://platform.test", [(login, policy)], speed=600, stats=stats, poll_interval_s=0.02,
                        heartbeat_s=0.02, transport=httpx.MockTransport(fake.handler))
    crew.start()
    try:
        wait_for(lambda: stats.get("provider_apps_lost") == 1, timeout=10, what="the app gone")
        calls = len(fake.calls)
        with fake._lock:
            fake.offers["o-late"] = _offer(9) | {"id": "o-late"}  # offered after the app went away
        time.sleep(0.3)
    finally:
        crew.stop()
    assert stats.get("heartbeats") >= 2  # it beat while it was there
    assert len(fake.calls) == calls, "no call at all after the app went away"
    assert fake.offers["o-late"]["status"] == "pending" and stats.get("offers_seen") == 0


def test_a_platform_without_a_heartbeat_endpoint_is_asked_once():
    fake = FakeDispatch([])
    handler = fake.handler

    def without_heartbeat(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/heartbeat"):
            fake.calls.append((request.method, request.url.path, 404))
            return httpx.Response(404, json={"detail": "Not Found"})
        return handler(request)

    login = _login()
    policy = ProviderPolicy(login.name, (login.lat, login.lon), login.capacity, ProviderConduct(), seed=1)
    stats = SimStats()
    crew = ProviderCrew("http://platform.test", [(login, policy)], speed=60, stats=stats, poll_interval_s=0.02,
                        heartbeat_s=0.02, transport=httpx.MockTransport(without_heartbeat))
    crew.start()
    try:
        wait_for(lambda: len([c for c in fake.calls if c[1] == "/api/v1/offers"]) >= 10, timeout=10,
                 what="polls going on")
    finally:
        crew.stop()
    assert len([c for c in fake.calls if c[1].endswith("/heartbeat")]) == 1
    assert stats.get("provider_errors") == 0


def test_the_demo_loses_one_providers_app_part_way_and_every_run_loses_the_same():
    demo = Scenario.demo()
    assert demo.provider.app_lost_share > 0
    lost = app_losses(demo.provider, demo.providers, demo.seed)
    assert len(lost) == 1 and lost == app_losses(demo.provider, demo.providers, demo.seed)
    (when,) = lost.values()
    low, high = demo.provider.app_lost_after_s
    assert low <= when <= high
    assert app_losses(ProviderConduct(), 30, 1) == {}  # off unless asked for
    many = app_losses(ProviderConduct(app_lost_share=0.2), 30, 1)
    assert len(many) == 6 and set(many) <= set(range(30))


class FakeRoutes(FakeDispatch):
    """The fake with a provider's route for the day: planned visits assigned to it."""

    def __init__(self, stops: list[dict]):
        super().__init__([])
        self.stops = stops
        self.days: list[str] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/providers/p-1/route":
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.valid_tokens:
                return httpx.Response(401, json={"detail": "token unknown or expired"})
            self.days.append(request.url.params["day"])
            return httpx.Response(200, json={"provider_id": "p-1", "stops": self.stops})
        response = super()._handle(request)
        parts = request.url.path.split("/")
        if response.status_code == 200 and parts[3] == "requests":
            for stop in self.stops:
                if stop["request_id"] == parts[4]:
                    stop["status"] = {"arrived": "arrived", "complete": "completed"}[parts[5]]
        return response


def test_a_provider_follows_its_planned_route_arriving_at_the_planned_time():
    now = datetime.now(UTC)
    soon = now + timedelta(seconds=2)
    stops = [
        {"seq": 0, "request_id": "r-done", "status": "completed", "planned_arrival": now.isoformat()},
        {"seq": 1, "request_id": "r-lunch", "status": "assigned", "service": "meal", "resident_id": "res-1",
         "planned_arrival": soon.isoformat(), "planned_start": soon.isoformat()},
        {"seq": 2, "request_id": "r-bath", "status": "assigned", "service": "bathing", "resident_id": "res-2",
         "planned_arrival": (now + timedelta(hours=3)).isoformat()},
        {"seq": 3, "request_id": None, "status": "planned", "planned_arrival": now.isoformat()},
    ]
    fake = FakeRoutes(stops)
    conduct = ProviderConduct(planned_late_minutes=(0, 0))
    policy = ProviderPolicy("Li Mei", (31.23, 121.47), 2, conduct, seed=1)
    stats = SimStats()
    tz = timezone(timedelta(hours=8))
    crew = ProviderCrew("http://platform.test", [(_login(), policy)], speed=600, stats=stats,
                        poll_interval_s=0.05, transport=httpx.MockTransport(fake.handler), plan_tz=tz,
                        route_every_s=0.2, homes={"res-1": (31.231, 121.471)})
    crew.start()
    try:
        wait_for(lambda: stats.get("requests_completed") == 1, timeout=15, what="the lunch visit completed")
        arrived_at = datetime.now(UTC)
        time.sleep(0.5)  # the route is read again meanwhile: nothing is taken twice
    finally:
        crew.stop()
    assert arrived_at >= soon, "not before the planned time"
    steps = [c[1] for c in fake.calls if "/requests/" in c[1]]
    assert steps == ["/api/v1/requests/r-lunch/en-route", "/api/v1/requests/r-lunch/arrived",
                     "/api/v1/requests/r-lunch/complete"]
    assert stats.get("planned_visits_taken") == 2, "the lunch, and the bath waiting for its time"
    assert set(fake.days) == {now.astimezone(tz).date().isoformat()}, "the plan's day in its time zone"
