"""Per-service dispatch policy: priority, time targets, offer time-out, escalation ladder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from homecare.contract.models import Service

_DURATIONS = (
    "acknowledge_within", "assign_within", "arrive_within", "offer_timeout", "warn_before_assign_due",
    "expected_service",
)


@dataclass(frozen=True)
class ServicePolicy:
    """How one service is dispatched. Priority 1 is the most urgent."""

    priority: int
    acknowledge_within: timedelta
    assign_within: timedelta
    arrive_within: timedelta
    offer_timeout: timedelta
    declines_before_escalation: int
    # Rung 1 of the ladder: a waiting request is "at risk" this long before its assignment target.
    warn_before_assign_due: timedelta = timedelta(minutes=5)
    # How long a provider spends with the resident: predicts when a busy provider is free again.
    expected_service: timedelta = timedelta(minutes=15)
    # A provider may be pulled off a lower-priority job not yet started (it goes back to the queue).
    may_preempt: bool = False
    # Being at risk hands the request to the dispatchers at once (rung 2) instead of only flagging it.
    escalate_when_at_risk: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 5:
            raise ValueError("priority must be between 1 and 5")
        for name in _DURATIONS:
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.assign_within > self.arrive_within:
            raise ValueError("assign_within must not exceed arrive_within")
        if self.warn_before_assign_due > self.assign_within:
            raise ValueError("warn_before_assign_due must not exceed assign_within")
        if self.declines_before_escalation < 1:
            raise ValueError("declines_before_escalation must be at least 1")


def _policy(
    priority: int, assign_min: float, arrive_min: float, offer_s: float, declines: int, warn_min: float,
    service_min: float, **flags: bool,
) -> ServicePolicy:
    return ServicePolicy(
        priority=priority,
        acknowledge_within=timedelta(seconds=10),
        assign_within=timedelta(minutes=assign_min),
        arrive_within=timedelta(minutes=arrive_min),
        offer_timeout=timedelta(seconds=offer_s),
        declines_before_escalation=declines,
        warn_before_assign_due=timedelta(minutes=warn_min),
        expected_service=timedelta(minutes=service_min),
        **flags,
    )


# Emergencies go to few providers fast, may pre-empt routine work and reach a person early;
# escorts and baths are booked within a window. Offer time-outs: most providers answer within
# half a minute; a minute lets nearly all of them, and costs little when one never answers
# (measured with bench.dispatch: 120-300 s time-outs made mean arrival 5% worse).
DEFAULT_POLICIES: Mapping[Service, ServicePolicy] = {
    Service.EMERGENCY: _policy(
        1, assign_min=2, arrive_min=45, offer_s=45, declines=2, warn_min=0.75, service_min=25,
        may_preempt=True, escalate_when_at_risk=True,
    ),
    Service.MOBILITY: _policy(2, assign_min=10, arrive_min=30, offer_s=60, declines=3, warn_min=3, service_min=14),
    Service.MEAL: _policy(3, assign_min=20, arrive_min=60, offer_s=60, declines=3, warn_min=5, service_min=15),
    Service.BATHING: _policy(4, assign_min=40, arrive_min=120, offer_s=90, declines=4, warn_min=10, service_min=33),
    Service.ESCORT: _policy(4, assign_min=40, arrive_min=120, offer_s=90, declines=4, warn_min=10, service_min=45),
}

# Overrides name durations in seconds: {"meal": {"offer_timeout_s": 30, "priority": 2}}.
_DURATION_KEYS = {f"{name}_s": name for name in _DURATIONS}
_INT_KEYS = {"priority", "declines_before_escalation"}
_BOOL_KEYS = {"may_preempt", "escalate_when_at_risk"}


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key} must be true or false, not {value!r}")


def _apply(policy: ServicePolicy, override: Mapping[str, Any]) -> ServicePolicy:
    changes: dict[str, Any] = {}
    for key, value in override.items():
        if key in _DURATION_KEYS:
            changes[_DURATION_KEYS[key]] = timedelta(seconds=float(value))
        elif key in _INT_KEYS:
            changes[key] = int(value)
        elif key in _BOOL_KEYS:
            changes[key] = _boolean(key, value)
        else:
            allowed = sorted([*_DURATION_KEYS, *_INT_KEYS, *_BOOL_KEYS])
            raise ValueError(f"unknown policy setting {key!r}; allowed: {', '.join(allowed)}")
    # A shorter assignment window drags the warning along, so one override stays consistent.
    if "assign_within" in changes and "warn_before_assign_due" not in changes:
        changes["warn_before_assign_due"] = min(policy.warn_before_assign_due, changes["assign_within"])
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
