"""How a simulated provider answers offers and how long the work takes (pure, seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homecare.contract import Service, parse_ts

from .geo import distance_km
from .profiles import SERVICE_MINUTES
from .scenario import ProviderConduct

CITY_KMH = 18.0  # door to door across the city by e-bike or car, with parking
SETTING_OFF_MIN = 3.0


@dataclass(frozen=True)
class Decision:
    """What to do with an offer, and after how many simulated seconds."""

    answer: str  # "accept", "decline" or "ignore" (let it expire)
    after_s: float
    reason: str | None = None


class ProviderPolicy:
    """One provider's conduct; every draw comes from its own seeded generator."""

    def __init__(
        self, name: str, location: tuple[float, float], capacity: int, conduct: ProviderConduct, seed: object,
        app_lost_after_s: float | None = None,
    ):
        self.name = name
        self.location = location
        self.capacity = capacity
        self.conduct = conduct
        self.rng = random.Random(f"provider:{seed}")
        # Simulated seconds after the start when this provider's app goes away (None: never).
        self.app_lost_after_s = app_lost_after_s

    def decide(self, offer: dict[str, Any], active_jobs: int) -> Decision:
        """Accept most offers, decline some (always when at capacity), ignore a few."""
        emergency = offer.get("service") == Service.EMERGENCY.value
        low, high = self.conduct.emergency_decide_after_s if emergency else self.conduct.decide_after_s
        after = self.rng.uniform(low, high)
        if active_jobs >= self.capacity:
            return Decision("decline", after, "at capacity")
        roll = self.rng.random()
        if roll < self.conduct.ignore_rate and not emergency:
            return Decision("ignore", after)
        if roll < self.conduct.ignore_rate + self.conduct.accept_rate or emergency:
            return Decision("accept", after)
        return Decision("decline", after, self.rng.choice(["off duty soon", "too far", "another visit ran late"]))

    def travel_minutes(self, offer: dict[str, Any], home: tuple[float, float] | None) -> float:
        """Minutes to the door: the offer's ETA, else from the distance, else a typical trip."""
        eta = offer.get("eta_minutes")
        if isinstance(eta, int | float) and eta >= 0:
            return float(eta) * self.rng.uniform(0.75, 1.15)  # traffic
        if home is not None:
            return SETTING_OFF_MIN + distance_km(*self.location, *home) / CITY_KMH * 60 * self.rng.uniform(0.8, 1.3)
        return self.rng.uniform(*self.conduct.default_eta_minutes)

    def service_minutes(self, service: str | None) -> float:
        """Minutes spent with the resident."""
        low, high = SERVICE_MINUTES.get(Service(service) if service else Service.MOBILITY, (10, 20))
        return self.rng.uniform(low, high)


def app_losses(conduct: ProviderConduct, count: int, seed: object) -> dict[int, float]:
    """Which providers' apps go away, by index, and when (simulated seconds after the start):
    `app_lost_share` of them, at least one when the share is above 0; seeded, so every run and
    every shard of a scenario agree."""
    if conduct.app_lost_share <= 0 or count <= 0:
        return {}
    rng = random.Random(f"app-losses:{seed}")
    lost = max(1, round(conduct.app_lost_share * count))
    low, high = conduct.app_lost_after_s
    return {i: rng.uniform(low, high) for i in sorted(rng.sample(range(count), min(lost, count)))}


def real_delay(sim_seconds: float, speed: float, deadline: str | None = None, now: datetime | None = None) -> float:
    """Real seconds to wait for `sim_seconds` of simulated time, answering before a deadline."""
    delay = sim_seconds / speed
    if deadline and now is not None:
        try:
            left = (parse_ts(deadline) - now).total_seconds()
        except ValueError:
            return delay
        delay = min(delay, max(0.0, left * 0.5))
    return delay
