"""Per-service dispatch policy: priority, time targets, offer time-out, escalation threshold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from homecare.contract.models import Service

_DURATIONS = ("acknowledge_within", "assign_within", "arrive_within", "offer_timeout")


@dataclass(frozen=True)
class ServicePolicy:
    """How one service is dispatched. Priority 1 is the most urgent."""

    priority: int
    acknowledge_within: timedelta
    assign_within: timedelta
    arrive_within: timedelta
    offer_timeout: timedelta
    declines_before_escalation: int

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 5:
            raise ValueError("priority must be between 1 and 5")
        for name in _DURATIONS:
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.assign_within > self.arrive_within:
            raise ValueError("assign_within must not exceed arrive_within")
        if self.declines_before_escalation < 1:
            raise ValueError("declines_before_escalation must be at least 1")


def _policy(priority: int, assign_min: float, arrive_min: float, offer_s: float, declines: int) -> ServicePolicy:
    return ServicePolicy(
        priority=priority,
        acknowledge_within=timedelta(seconds=10),
        assign_within=timedelta(minutes=assign_min),
        arrive_within=timedelta(minutes=arrive_min),
        offer_timeout=timedelta(seconds=offer_s),
        declines_before_escalation=declines,
    )


# Emergencies go to few providers fast; escorts and baths are booked within a window.
DEFAULT_POLICIES: Mapping[Service, ServicePolicy] = {
    Service.EMERGENCY: _policy(1, assign_min=2, arrive_min=45, offer_s=60, declines=2),
    Service.MOBILITY: _policy(2, assign_min=10, arrive_min=30, offer_s=120, declines=3),
    Service.MEAL: _policy(3, assign_min=20, arrive_min=60, offer_s=180, declines=3),
    Service.BATHING: _policy(4, assign_min=40, arrive_min=120, offer_s=300, declines=4),
    Service.ESCORT: _policy(4, assign_min=40, arrive_min=120, offer_s=300, declines=4),
}

# Overrides name durations in seconds: {"meal": {"offer_timeout_s": 30, "priority": 2}}.
_DURATION_KEYS = {f"{name}_s": name for name in _DURATIONS}
_PLAIN_KEYS = {"priority", "declines_before_escalation"}


def _apply(policy: ServicePolicy, override: Mapping[str, Any]) -> ServicePolicy:
    changes: dict[str, Any] = {}
    for key, value in override.items():
        if key in _DURATION_KEYS:
            changes[_DURATION_KEYS[key]] = timedelta(seconds=float(value))
        elif key in _PLAIN_KEYS:
            changes[key] = int(value)
        else:
            allowed = sorted([*_DURATION_KEYS, *_PLAIN_KEYS])
            raise ValueError(f"unknown policy setting {key!r}; allowed: {', '.join(allowed)}")
    return replace(policy, **changes)


@dataclass(frozen=True)
class DispatchPolicy:
    """The policies of every service."""

    services: Mapping[Service, ServicePolicy]

    def for_service(self, service: Service | str) -> ServicePolicy:
        """The policy of one service."""
        return self.services[Service(service)]

    @classmethod
    def default(cls) -> DispatchPolicy:
        return cls(dict(DEFAULT_POLICIES))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, Any]]) -> DispatchPolicy:
        """Defaults changed per service; `"*"` changes every service."""
        policies = dict(DEFAULT_POLICIES)
        for name, override in overrides.items():
            targets = list(Service) if name == "*" else [Service(name)]
            for service in targets:
                policies[service] = _apply(policies[service], override)
        return cls(policies)
