"""Simulated providers at work through the operator API: one asyncio loop in one thread.

Each provider signs in with its own login, polls its pending offers, answers each after a
while (`ProviderPolicy`), then reports arrival after the travel time and completion after the
service, both in simulated time scaled to real time by the speed factor. Its app sends a
heartbeat every `heartbeat_s` real seconds (presence is judged on the platform's clock). A
provider whose app goes away (`ProviderPolicy.app_lost_after_s`) stops everything at that moment:
no heartbeat, no poll, no answer, no step; the requests it held stay where they are.

With a plan time zone, each provider also reads its route for the day (every `route_every_s`)
and follows the planned visits assigned to it: it sets off so as to arrive at the planned time
(the platform's clock), then reports arrival and completion as for a press. Presses keep coming
as offers meanwhile (dispatch inserts them into the route).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import httpx

from homecare.contract import parse_ts

from .providers import ProviderPolicy, real_delay
from .roster import EnrolledProvider
from .stats import SimStats

log = logging.getLogger(__name__)

NOT_THERE = {404, 405}  # an optional endpoint this platform does not have
MAX_IN_FLIGHT = 3


@dataclass
class _Agent:
    login: EnrolledProvider
    policy: ProviderPolicy
    headers: dict[str, str] = field(default_factory=dict)
    handled: set[str] = field(default_factory=set)
    serving: set[str] = field(default_factory=set)  # request ids in hand: a press or a planned visit
    active: int = 0
    gone: bool = False  # its app went away


class ProviderCrew:
    """Every simulated provider, run by one thread."""

    def __init__(
        self,
        api_url: str,
        providers: list[tuple[EnrolledProvider, ProviderPolicy]],
        speed: float,
        stats: SimStats,
        homes: dict[str, tuple[float, float]] | None = None,
        *,
        poll_interval_s: float = 1.0,
        heartbeat_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        plan_tz: tzinfo | None = None,
        route_every_s: float = 10.0,
    ):
        self._api_url = api_url.rstrip("/")
        self._agents = [_Agent(login, policy) for login, policy in providers]
        self._speed, self._stats, self._homes = speed, stats, homes or {}
        self._poll_s = poll_interval_s
        self._heartbeat_s = heartbeat_s
        self._heartbeat = True  # cleared when the platform has no heartbeat endpoint
        self._transport = transport
        self._now = now
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._en_route = True  # cleared when the platform has no en-route endpoint
        self._plan_tz = plan_tz  # None: routes are not followed
        self._route_every_s = route_every_s

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="provider-crew", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and abandon work in progress (its requests stay where they are)."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        self._thread = None

    # -- the loop -----------------------------------------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._started.set()
        # A few requests in flight for the whole crew: more only queue in the API's worker threads,
        # and an API whose requests each take two pooled connections can then starve its pool.
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)  # the rest wait here, not in httpx's pool
        client = httpx.AsyncClient(base_url=self._api_url, timeout=30, limits=limits, transport=self._transport)
        async with client as http:
            self._http = http
            tasks = [asyncio.create_task(self._work(agent)) for agent in self._agents]
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, agent: _Agent) -> None:
        jobs: set[asyncio.Task] = set()
        beating = asyncio.create_task(self._beat(agent))
        lost_after = agent.policy.app_lost_after_s
        lost_at = time.monotonic() + lost_after / self._speed if lost_after is not None else None
        route_read_at = 0.0
        try:
            while lost_at is None or time.monotonic() < lost_at:
                try:
                    if self._plan_tz is not None and time.monotonic() >= route_read_at:
                        route_read_at = time.monotonic() + self._route_every_s
                        await self._follow_route(agent, jobs)
                    await self._poll(agent, jobs)
                except (httpx.TransportError, RuntimeError) as exc:
                    self._stats.add("provider_errors")
                    log.warning("provider %s: %r", agent.login.username, exc)
                await asyncio.sleep(self._poll_s * agent.policy.rng.uniform(0.8, 1.2))
            agent.gone = True  # the phone died: the answers and steps in progress die with it
            self._stats.add("provider_apps_lost")
            log.info("provider %s: the app went away", agent.login.username)
        finally:
            for task in (*jobs, beating):
                task.cancel()
            await asyncio.gather(*jobs, beating, return_exceptions=True)

    async def _beat(self, agent: _Agent) -> None:
        """The app's heartbeat, now and every `heartbeat_s` real seconds, while the app is there."""
        while self._heartbeat and not agent.gone:
            try:
                response = await self._call(agent, "POST", f"/api/v1/providers/{agent.login.id}/heartbeat")
                if response.status_code in NOT_THERE:
                    self._heartbeat = False  # a platform without presence: the answers are all it sees
                elif response.status_code == 200:
                    self._stats.add("heartbeats")
                else:
                    self._stats.add("provider_errors")
                    log.warning("heartbeat of %s: %s %s", agent.login.username, response.status_code,
                                response.text[:200])
            except (httpx.TransportError, RuntimeError) as exc:
                self._stats.add("provider_errors")
                log.warning("heartbeat of %s: %r", agent.login.username, exc)
            await asyncio.sleep(self._heartbeat_s)  # no draw from the policy's generator: its answers stay seeded

    async def _poll(self, agent: _Agent, jobs: set[asyncio.Task]) -> None:
        response = await self._call(agent, "GET", "/api/v1/offers", params={"status": "pending"})
        if response.status_code != 200:
            raise RuntimeError(f"GET /api/v1/offers: {response.status_code} {response.text[:200]}")
        body = response.json()
        offers = body.get("items", []) if isinstance(body, dict) else body
        pending = {o["id"] for o in offers}
        agent.handled &= pending  # answered offers leave the list; forget them
        for offer in offers:
            if offer["id"] not in agent.handled and offer.get("status", "pending") == "pending":
                agent.handled.add(offer["id"])
                self._stats.add("offers_seen")
                job = asyncio.create_task(self._answer(agent, offer))
                jobs.add(job)
                job.add_done_callback(jobs.discard)

    async def _follow_route(self, agent: _Agent, jobs: set[asyncio.Task]) -> None:
        """Read today's route (the plan's day, in its time zone) and take up each planned visit
        assigned to this provider that is not in hand yet."""
        assert self._plan_tz is not None
        day = self._now().astimezone(self._plan_tz).date().isoformat()
        response = await self._call(agent, "GET", f"/api/v1/providers/{agent.login.id}/route", params={"day": day})
        if response.status_code in NOT_THERE:
            self._plan_tz = None  # a platform without routes: presses are all there is
            return
        if response.status_code != 200:
            raise RuntimeError(f"GET route: {response.status_code} {response.text[:200]}")
        for stop in route_stops(response.json()):
            request_id = stop.get("request_id")
            if not request_id or request_id in agent.serving or stop.get("status") != "assigned":
                continue
            arrive_at = planned_arrival(stop)
            if arrive_at is None:
                continue
            agent.serving.add(request_id)
            self._stats.add("planned_visits_taken")
            job = asyncio.create_task(self._visit(agent, stop, arrive_at))
            jobs.add(job)
            job.add_done_callback(jobs.discard)

    async def _visit(self, agent: _Agent, stop: dict[str, Any], arrive_at: datetime) -> None:
        """One planned visit: set off in time to arrive at the planned time, a little early or late."""
        try:
            arrive_at += timedelta(minutes=agent.policy.rng.uniform(*agent.policy.conduct.planned_late_minutes))
            await self._serve(agent, stop, stop, arrive_at=arrive_at)
        except httpx.TransportError as exc:
            self._stats.add("provider_errors")
            log.warning("provider %s, planned visit %s: %r", agent.login.username, stop.get("request_id"), exc)
        finally:
            agent.serving.discard(str(stop.get("request_id")))

    async def _call(self, agent: _Agent, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call as this provider; signs in first, and again when the token has expired."""
        for attempt in range(2):
            if not agent.headers:
                await self._sign_in(agent)
            async with self._gate:
                response = await self._http.request(method, path, headers=agent.headers, **kwargs)
            if response.status_code != 401 or attempt:
                return response
            agent.headers = {}
        return response

    async def _sign_in(self, agent: _Agent) -> None:
        form = {"username": agent.login.username, "password": agent.login.password}
        async with self._gate:
            response = await self._http.post("/api/v1/auth/token", data=form)
        if response.status_code != 200:
            raise RuntimeError(f"sign-in of {agent.login.username}: {response.status_code} {response.text[:200]}")
        agent.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    # -- one offer ----------------------------------------------------------------------------

    async def _answer(self, agent: _Agent, offer: dict[str, Any]) -> None:
        try:
            decision = agent.policy.decide(offer, agent.active)
            if decision.answer == "ignore":
                self._stats.add("offers_ignored")
                return
            delay = real_delay(decision.after_s, self._speed, offer.get("deadline_at"), self._now())
            if decision.answer == "decline":
                await asyncio.sleep(delay)
                response = await self._call(
                    agent, "POST", f"/api/v1/offers/{offer['id']}/decline", json={"reason": decision.reason}
                )
                self._count(response, "offers_declined", "offer_conflicts", "decline")
                return
            agent.active += 1  # taken from the moment they decide, so the next offer sees the load
            try:
                await asyncio.sleep(delay)
                response = await self._call(agent, "POST", f"/api/v1/offers/{offer['id']}/accept")
                if self._count(response, "offers_accepted", "offer_conflicts", "accept"):
                    request = response.json()
                    # A planned visit offered rather than assigned is still done at its time.
                    await self._serve(agent, offer, request, arrive_at=planned_arrival(request))
            finally:
                agent.active -= 1
                agent.serving.discard(str(offer.get("request_id")))
        except httpx.TransportError as exc:
            self._stats.add("provider_errors")
            log.warning("provider %s, offer %s: %r", agent.login.username, offer.get("id"), exc)

    async def _serve(
        self, agent: _Agent, offer: dict[str, Any], request: dict[str, Any], arrive_at: datetime | None = None,
    ) -> None:
        """Travel, arrive, serve, complete; with `arrive_at` (a planned visit), set off so as to
        arrive then (platform time), not at once."""
        request_id = offer.get("request_id") or request.get("id")
        policy = agent.policy
        travel = policy.travel_minutes(offer, self._homes.get(offer.get("resident_id") or request.get("resident_id")))
        if arrive_at is not None:
            wait = (arrive_at - self._now()).total_seconds() - travel * 60 / self._speed
            if wait > 0:
                await asyncio.sleep(wait)
        agent.serving.add(str(request_id))
        if self._en_route:
            response = await self._call(agent, "POST", f"/api/v1/requests/{request_id}/en-route")
            if response.status_code in NOT_THERE:
                self._en_route = False
        await asyncio.sleep(travel * 60 / self._speed)
        response = await self._call(agent, "POST", f"/api/v1/requests/{request_id}/arrived")
        if not self._count(response, "requests_arrived", "request_conflicts", "arrived"):
            return
        await asyncio.sleep(policy.service_minutes(offer.get("service") or request.get("service")) * 60 / self._speed)
        response = await self._call(agent, "POST", f"/api/v1/requests/{request_id}/complete")
        self._count(response, "requests_completed", "request_conflicts", "complete")

    def _count(self, response: httpx.Response, ok: str, conflict: str, what: str) -> bool:
        """Count the outcome of a call; True when it succeeded."""
        if response.status_code in (200, 201):
            self._stats.add(ok)
            return True
        if response.status_code == 409:  # expired, withdrawn, cancelled meanwhile: normal life
            self._stats.add(conflict)
            log.info("%s refused: %s", what, response.text[:200])
        else:
            self._stats.add("provider_errors")
            log.warning("%s failed: %s %s", what, response.status_code, response.text[:200])
        return False


def route_stops(body: Any) -> list[dict[str, Any]]:
    """The stops of a route answer (`{"stops": [...]}`, or a list of stops), in order."""
    stops = body.get("stops", []) if isinstance(body, dict) else body
    return [s for s in stops if isinstance(s, dict)] if isinstance(stops, list) else []


def planned_arrival(item: dict[str, Any]) -> datetime | None:
    """When a planned visit (a route's stop or a planned request) should be reached; None for a press."""
    for key in ("planned_arrival", "planned_start"):
        value = item.get(key)
        if isinstance(value, str):
            try:
                return parse_ts(value)
            except ValueError:
                continue
    return None
