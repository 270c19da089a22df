"""The simulated city of the benchmark: residents, providers with shifts, and a day of requests.

Geography (Shanghai districts), the hourly shape of the requests and the time spent per visit
come from the device simulator (read only). Daily volumes are our own: the simulator's demo
profile asks for 2.6 visits per resident per day, far beyond what 40 providers serve for 500
residents; here the volume is set so the busiest hours load the fleet to about 80%.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices.simulator.geo import SHANGHAI, District
from devices.simulator.profiles import PRESS_PROFILE, SERVICE_MINUTES
from homecare.contract.models import Service
from services.dispatch.domain.matching import Location

DAY0 = datetime(2026, 12, 1, tzinfo=UTC)  # simulated local midnight; the clock's zone does not matter

# Requests per resident per day at nominal load, spread over the hours like the simulator's presses.
NOMINAL_PER_DAY: dict[Service, float] = {
    Service.MEAL: 0.28,
    Service.MOBILITY: 0.28,
    Service.BATHING: 0.07,
    Service.ESCORT: 0.05,
    Service.EMERGENCY: 0.012,  # a button press or a suspected fall, about six a day for 500 people
}

# (name, start hour, length in hours, share of the fleet)
SHIFTS = (("early", 6.5, 8.0, 0.45), ("late", 13.5, 8.5, 0.45), ("night", 22.0, 9.0, 0.1))


@dataclass(frozen=True)
class Resident:
    id: str
    district: str
    location: Location
    need: float  # how often they ask, 1.0 = average


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    services: frozenset[str]
    capacity: int
    home: Location
    shift_start: datetime
    shift_end: datetime

    def on_shift(self, at: datetime) -> bool:
        return self.shift_start <= at < self.shift_end


@dataclass(frozen=True)
class RequestSpec:
    """One request of the day, the same for every policy compared."""

    id: str
    resident: Resident
    service: Service
    created: datetime
    service_minutes: float  # how long the visit really takes (only hindsight knows it in advance)

    @property
    def location(self) -> Location:
        return self.resident.location


def _around(rng: random.Random, district: District, km: float) -> Location:
    """A point scattered around a district centre (about `km` standard deviation)."""
    dlat = rng.gauss(0, km / 111.2)
    dlon = rng.gauss(0, km / (111.2 * math.cos(math.radians(district.lat))))
    return Location(district.lat + dlat, district.lon + dlon)


def residents(count: int, rng: random.Random) -> list[Resident]:
    """Residents spread over the districts, each with a need factor (mean 1)."""
    return [
        Resident(f"res-{i:04d}", d.name, _around(rng, d, 1.4), rng.lognormvariate(-0.125, 0.5))
        for i in range(count)
        for d in [SHANGHAI[i % len(SHANGHAI)]]
    ]


def providers(count: int, rng: random.Random, day: datetime = DAY0) -> list[Provider]:
    """Providers based in every district, on early, late and night shifts (the night shift
    of the evening before still works until the early shift starts)."""
    out = []
    night = max(1, round(SHIFTS[2][3] * count))
    early = round(SHIFTS[0][3] * count)
    slots = ["early"] * early + ["late"] * (count - early - night) + ["night"] * night
    for i, shift in enumerate(slots):
        district = SHANGHAI[i % len(SHANGHAI)]
        services = {Service.MEAL.value, Service.MOBILITY.value}
        if i % 3 != 2 or shift == "night":  # the few at night do everything
            services |= {Service.BATHING.value, Service.ESCORT.value}
        if i % 5 != 4 or shift == "night":
            services.add(Service.EMERGENCY.value)  # four in five are trained for emergencies
        _, start_h, hours, _ = next(s for s in SHIFTS if s[0] == shift)
        start = day + timedelta(hours=start_h)
        if shift == "night":
            start -= timedelta(days=1)  # on since last night; a second night crew starts at 22:00
        out.append(Provider(
            f"p-{i:02d}", f"Carer {i:02d}", frozenset(services), 2 if i % 4 else 1, _around(rng, district, 1.0),
            start, start + timedelta(hours=hours),
        ))
        if shift == "night":  # the same person's next night
            out.append(Provider(
                f"p-{i:02d}n", f"Carer {i:02d}", frozenset(services), out[-1].capacity, out[-1].home,
                start + timedelta(days=1), start + timedelta(days=1, hours=hours),
            ))
    return out


def hourly_rate(service: Service, hour: int, scale: float) -> float:
    """Requests per resident in that hour: the simulator's shape, our daily volume."""
    shape = PRESS_PROFILE[service]
    return NOMINAL_PER_DAY[service] * scale * shape[hour] / sum(shape)


@dataclass(frozen=True)
class Responses:
    """How each provider would answer an offer of each request: fixed in advance for the pair, so
    every policy meets the same people. Most say yes within half a minute; some decline; a few
    never look at their phone. `instant`: everyone says yes at once."""

    seed: int
    accept_p: float = 0.90
    decline_p: float = 0.06
    median_s: float = 20.0
    sigma: float = 0.6
    instant: bool = False

    def _rng(self, request_id: str, provider_id: str) -> random.Random:
        return random.Random(f"{self.seed}:{request_id}:{provider_id}")

    def answer(self, request_id: str, provider_id: str) -> tuple[str | None, float]:
        """("accept" | "decline" | None for no answer, seconds until the answer)."""
        if self.instant:
            return "accept", 0.0
        rng = self._rng(request_id, provider_id)
        roll, delay = rng.random(), rng.lognormvariate(0, self.sigma) * self.median_s
        if roll < self.accept_p:
            return "accept", delay
        return ("decline", delay) if roll < self.accept_p + self.decline_p else (None, delay)


def requests(
    people: list[Resident], rng: random.Random, scale: float = 1.0, day: datetime = DAY0
) -> list[RequestSpec]:
    """A day of requests: a Poisson process per resident, service and hour."""
    out = []
    for resident in people:
        for service in Service:
            for hour in range(24):
                rate = hourly_rate(service, hour, scale) * resident.need
                t = 0.0
                while True:
                    t += rng.expovariate(rate) if rate > 0 else 2.0
                    if t >= 1.0:
                        break
                    low, high = SERVICE_MINUTES[service]
                    created = day + timedelta(hours=hour + t)
                    out.append((created, resident, service, rng.uniform(low, high)))
    out.sort(key=lambda r: (r[0], r[1].id))
    # A second ask for the same service within a few hours is the same need pressed again, which
    # dispatch joins to the open request: keep only distinct needs, so every policy serves the same.
    last: dict[tuple[str, Service], datetime] = {}
    distinct = []
    for at, res, svc, minutes in out:
        if (res.id, svc) in last and at - last[(res.id, svc)] < timedelta(hours=3):
            continue
        last[(res.id, svc)] = at
        distinct.append((at, res, svc, minutes))
    return [RequestSpec(f"r-{i:05d}", res, svc, at, minutes) for i, (at, res, svc, minutes) in enumerate(distinct)]


def offered_load(specs: list[RequestSpec], fleet: list[Provider], travel_min: float = 8.0) -> list[float]:
    """Per hour: provider-minutes of work asked (visits + an average drive) over provider-minutes on shift."""
    asked = [0.0] * 24
    for spec in specs:
        asked[spec.created.hour] += spec.service_minutes + travel_min
    out = []
    for hour in range(24):
        at = DAY0 + timedelta(hours=hour, minutes=30)
        on = sum(1 for p in fleet if p.on_shift(at))
        out.append(asked[hour] / (on * 60) if on else float("inf"))
    return out
