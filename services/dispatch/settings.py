"""Settings of the dispatch service (environment prefix `HOMECARE_DISPATCH_`)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.matching import MatchWeights
from .domain.policy import DispatchPolicy


class DispatchSettings(BaseSettings):
    """Policy overrides, matching weights and worker timings."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_DISPATCH_", extra="ignore")

    # Per-service overrides, JSON in the environment: {"meal": {"offer_timeout_s": 90}, "*": {...}}.
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)

    travel_speed_kmh: float = Field(default=25.0, gt=0)
    fallback_travel_minutes: float = Field(default=30.0, ge=0)
    # Matching weights, in minutes of arrival time; see README "Matching".
    weight_urgency: float = Field(default=0.25, ge=0)
    weight_wait: float = Field(default=0.6, ge=0)
    weight_load_minutes: float = Field(default=4.0, ge=0)
    weight_fairness_minutes: float = Field(default=1.0, ge=0)
    fairness_cap: int = Field(default=5, ge=0)
    weight_continuity_minutes: float = Field(default=2.0, ge=0)
    continuity_cap: int = Field(default=3, ge=0)
    continuity_slack_minutes: float = Field(default=8.0, ge=0)
    weight_preempt_minutes: float = Field(default=10.0, ge=0)
    shift_overrun_minutes: float = Field(default=15.0, ge=0)
    # Planned routes (README "Planned routes in matching"): room a press must leave before a planned
    # visit's window ends, and the cost in minutes of a press that moves planned visits.
    plan_margin_minutes: float = Field(default=10.0, ge=0, le=240)
    weight_route_minutes: float = Field(default=0.0, ge=0, le=240)
    fairness_window_h: float = Field(default=12.0, gt=0)
    # A queued request (every qualified provider busy) is offered again this often.
    requeue_s: float = Field(default=3.0, gt=0)
    # A provider on shift not heard from this long (no heartbeat, answer or step) is unreachable:
    # no offers, an offer out to it is withdrawn, the roster says so. Its app beats every ~30 s.
    presence_timeout_s: float = Field(default=180.0, ge=30, le=3600)

    # Care plans (README "Care plans", "Day planning"): the centre's time zone for plans' days and
    # windows; planned visits become requests this long before their window opens; the planner's
    # time limit; each evening at `plan_evening_hour` (local) the next day is planned, unless it
    # was already (None: never automatically).
    plan_timezone: str = "Asia/Shanghai"
    plan_release_lead_minutes: float = Field(default=120.0, ge=0, le=24 * 60)
    plan_time_limit_s: float = Field(default=10.0, gt=0, le=600)
    plan_buffer_minutes: float = Field(default=0.0, ge=0, le=240)  # room for presses at windows' ends
    plan_reserve_share: float = Field(default=0.0, ge=0, le=1)  # of each shift kept on call for presses
    plan_evening_hour: int | None = Field(default=18, ge=0, le=23)

    # Lanes of each of dispatch's consumers: threads handling messages side by side, a device's
    # always on the same lane, in order (homecare.log's consumer runtime).
    intake_workers: int = Field(default=4, ge=1, le=32)
    timer_interval_s: float = Field(default=1.0, gt=0)
    outbox_poll_s: float = Field(default=1.0, gt=0)
    puback_timeout_s: float = Field(default=10.0, gt=0)
    batch_size: int = Field(default=100, ge=1)

    @field_validator("plan_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"plan_timezone: unknown time zone {value!r}") from exc
        return value

    def plan_zone(self) -> ZoneInfo:
        """The time zone of care plans' days and windows."""
        return ZoneInfo(self.plan_timezone)

    def dispatch_policy(self) -> DispatchPolicy:
        """The per-service policies: defaults with the overrides applied."""
        return DispatchPolicy.with_overrides(self.policies)

    def match_weights(self) -> MatchWeights:
        """The matcher's weights."""
        return MatchWeights(
            speed_kmh=self.travel_speed_kmh, fallback_travel_minutes=self.fallback_travel_minutes,
            urgency_factor=self.weight_urgency, wait_factor=self.weight_wait, load_minutes=self.weight_load_minutes,
            fairness_minutes=self.weight_fairness_minutes, fairness_cap=self.fairness_cap,
            continuity_minutes=self.weight_continuity_minutes, continuity_cap=self.continuity_cap,
            continuity_slack_minutes=self.continuity_slack_minutes, preempt_minutes=self.weight_preempt_minutes,
            shift_overrun_minutes=self.shift_overrun_minutes, plan_margin_minutes=self.plan_margin_minutes,
            route_minutes=self.weight_route_minutes,
        )
