"""What to simulate: how many homes and providers, how fast, how busy. Loadable from TOML or YAML."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_RUN_TAG = re.compile(r"^[a-z0-9]{1,12}$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ProviderConduct(BaseModel):
    """How simulated providers answer offers (delays in simulated seconds)."""

    model_config = ConfigDict(extra="forbid")

    accept_rate: float = Field(0.85, ge=0, le=1, description="share of offers accepted when not at capacity")
    ignore_rate: float = Field(0.02, ge=0, le=1, description="share of offers left to expire")
    decide_after_s: tuple[float, float] = Field((20.0, 90.0), description="time to answer an offer")
    emergency_decide_after_s: tuple[float, float] = (5.0, 30.0)
    poll_interval_s: float = Field(1.0, gt=0, description="real seconds between polls of the offers")
    default_eta_minutes: tuple[float, float] = Field((6.0, 15.0), description="when the offer names none")
    # Presence is judged on the platform's clock, so the app beats in real seconds, not simulated.
    heartbeat_s: float = Field(30.0, gt=0, le=600, description="real seconds between the app's heartbeats")
    app_lost_share: float = Field(
        0.0, ge=0, le=1,
        description="share of providers whose app goes away part way (at least one when above 0):"
                    " no more heartbeats, polls or answers from then on",
    )
    app_lost_after_s: tuple[float, float] = Field(
        (1800.0, 5400.0), description="simulated seconds after the start when such an app goes away",
    )
    planned_late_minutes: tuple[float, float] = Field(
        (-2.0, 3.0), description="real minutes after its planned time a planned visit is reached (below 0: early)",
    )

    @field_validator("planned_late_minutes")
    @classmethod
    def _span_of_lateness(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not -120 <= value[0] <= value[1] <= 120:
            raise ValueError("must be [low, high] with -120 <= low <= high <= 120")
        return value

    @field_validator("decide_after_s", "emergency_decide_after_s", "default_eta_minutes", "app_lost_after_s")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return value


class Misbehaviour(BaseModel):
    """Which share of the devices misbehave, and how (see `misbehaviour.py`)."""

    model_config = ConfigDict(extra="forbid")

    share: float = Field(0.0, ge=0, le=1, description="of all devices")
    kinds: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(MESSAGE_FAULT_KINDS, 1.0),
        description="relative weight of each fault among the misbehaving devices; the self-test faults only "
        "when named",
    )
    break_rate: float = Field(0.2, ge=0, le=1, description="share of a malformed / out-of-range device's messages")
    duplicate_rate: float = Field(0.5, ge=0, le=1, description="share of a duplicating device's messages sent twice")
    skews_s: list[float] = Field(
        default_factory=lambda: [600.0, -8 * 86400.0, 120.0, -3600.0],
        description="clock offsets drawn from; beyond +300 s or -7 days every stamped message is rejected",
    )
    # A stuck contact repeats at its firmware's rate, faster than a person presses: 4 a second is
    # over the platform's stuck-button rule (3 a second for 5 s, homecare/buttons.py) and under
    # the gateway's per-device budget (5 messages a second), so every press reaches the services.
    stuck_presses_per_s: float = Field(4.0, gt=0, le=20)
    stuck_after_s: tuple[float, float] = (5.0, 60.0)
    silent_after_s: tuple[float, float] = (10.0, 60.0)
    selftest_fail_after: int = Field(0, ge=0, description="self-tests passed before a part breaks")
    selftest_skip_after: int = Field(
        1, ge=1, description="self-tests sent before a skipping device sends no more (one at least: it is not "
        "a device that never had the self-test)",
    )

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        if any(w < 0 for w in value.values()):
            raise ValueError("weights must be >= 0")
        return value

    @field_validator("stuck_after_s", "silent_after_s")
    @classmethod
    def _span(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return value


class PowerCut(BaseModel):
    """A district loses power: `share` of the devices drop off at once and come back with jitter."""

    model_config = ConfigDict(extra="forbid")

    at_s: float = Field(ge=0, description="real seconds after the devices start")
    share: float = Field(1.0, gt=0, le=1)
    outage_s: float = Field(30.0, ge=0)
    jitter_s: float = Field(30.0, ge=0, description="reconnects spread uniformly over this after the power is back")


class CareMix(BaseModel):
    """The planned care of the simulated homes (`care.py`): which share of the homes has care
    plans and which plans, and how many days the platform is asked to plan."""

    model_config = ConfigDict(extra="forbid")

    share: float = Field(0.0, ge=0, le=1, description="of the homes, with care plans; 0: no plans, no planning")
    lunch: float = Field(0.75, ge=0, le=1, description="of those, a lunch every day between 11:00 and 13:00")
    bath: float = Field(0.35, ge=0, le=1, description="a bath every week or two on a weekday")
    mobility: float = Field(0.3, ge=0, le=1, description="help getting up or to bed")
    escort: float = Field(0.15, ge=0, le=1, description="an escort to a booked appointment")
    plan_days: int = Field(1, ge=0, le=7, description="days the platform plans at the start, from today")
    shifts: bool = Field(True, description="give the providers planned shifts (early, day, late) on those days")


# Faults in what a device sends; by default the misbehaving devices get these (the load
# benchmark's scenario counts on it to compare what was sent broken with what was rejected).
MESSAGE_FAULT_KINDS = ("malformed", "out_of_range", "duplicate", "clock_skew", "stuck_button", "silent")
FAULT_KINDS = (*MESSAGE_FAULT_KINDS, "selftest_fail", "selftest_skip")


class Scenario(BaseModel):
    """A simulation: homes (a resident with a bed and a button each), providers, clock, rates."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    homes: int = Field(20, ge=1, le=100_000)
    providers: int = Field(8, ge=1, le=10_000)
    districts: int = Field(4, ge=1, le=8, description="how many districts of the city the homes spread over")
    speed: float = Field(1.0, gt=0, le=3600, description="simulated seconds per real second")
    seed: int = 1
    press_rate: float = Field(1.0, ge=0, description="multiplier of the hourly press rates")
    duration_s: float | None = Field(None, gt=0, description="real seconds to run; None: until stopped")
    start_time: str | None = Field(None, description="simulated local time at start, HH:MM; None: now")
    utc_offset_hours: float = Field(8.0, ge=-12, le=14, description="the city's time zone")
    report_interval_s: int = Field(10, ge=1, le=600)
    sample_interval_s: int = Field(1, ge=1, le=60)
    keepalive_s: int = Field(60, ge=30, le=300)
    connect_rate: float = Field(200.0, gt=0, description="device connections opened per second")
    button_tick_s: float | None = Field(
        None, gt=0, le=60, description="real seconds between a button's looks at the clock; None: 60/speed, 1-10 s",
    )
    misbehaviour: Misbehaviour = Field(default_factory=Misbehaviour)
    power_cuts: list[PowerCut] = Field(default_factory=list)
    run_tag: str | None = Field(None, description="makes device ids and logins unique; random when None")
    bed_fw: str = "2.3.1"
    bed_timestamps: str = Field("rfc3339", pattern="^(rfc3339|ms)$", description="a bed's `ts` form")
    button_fw: str = "1.4.2"
    selftest_interval_h: int = Field(24, ge=1, le=744, description="devices' self-test interval until a config says")
    before_v11_share: float = Field(
        0.0, ge=0, le=1, description="of all devices, built before v1.1: no self-test, `selftest.request` unknown",
    )
    before_v11_bed_fw: str = "2.2.4"
    before_v11_button_fw: str = "1.3.9"
    provider: ProviderConduct = Field(default_factory=ProviderConduct)
    care: CareMix = Field(default_factory=CareMix)

    @field_validator("start_time")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None and not _TIME_OF_DAY.match(value):
            raise ValueError("must be HH:MM, e.g. 07:30")
        return value

    @field_validator("run_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _RUN_TAG.match(value):
            raise ValueError("must be 1-12 lowercase letters or digits")
        return value

    @model_validator(mode="after")
    def _sampling(self) -> Scenario:
        if self.sample_interval_s > self.report_interval_s:
            raise ValueError("sample_interval_s must not exceed report_interval_s")
        return self

    def tz(self) -> tzinfo:
        return timezone(timedelta(hours=self.utc_offset_hours))

    def button_tick(self) -> float:
        """Real seconds between button ticks: a simulated minute, within 1-10 s of real time."""
        return self.button_tick_s or min(10.0, max(1.0, 60.0 / self.speed))

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def preset(cls, preset: str, /, **overrides: Any) -> Scenario:
        """A named preset (see PRESETS), with some fields changed (None leaves a field as is)."""
        try:
            base = PRESETS[preset]
        except KeyError:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}") from None
        return cls.model_validate({**base, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def demo(cls, **overrides: Any) -> Scenario:
        """The preset `homecare demo` runs."""
        return cls.preset("demo", **overrides)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """From a .toml, .yaml or .yml file; `preset = "demo"` in it starts from that preset."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ValueError(f"{path}: a scenario file must end in .toml, .yaml or .yml")
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a scenario must be a table of settings")
        preset = data.pop("preset", None)
        if preset is not None:
            base = PRESETS.get(preset, {})
            provider = {**base.get("provider", {}), **data.pop("provider", {})}
            care = {**base.get("care", {}), **data.pop("care", {})}
            return cls.preset(preset, **data, provider=provider or None, care=care or None)
        return cls.model_validate(data)


PRESETS: dict[str, dict[str, Any]] = {
    # 20 homes whose morning runs at an hour a minute: within the first minute several requests
    # are pressed, offered, accepted, reached and completed.
    # A tenth of the devices are older (no self-test); six fail or skip their self-tests (with
    # this seed, buttons and beds of both kinds). One provider's phone dies part way through the
    # morning: dispatch stops offering to it once its app has been quiet for the presence
    # time-out, and the roster shows it unreachable.
    "demo": {
        "name": "demo", "homes": 20, "providers": 8, "districts": 4, "speed": 60.0,
        "press_rate": 4.0, "start_time": "07:30", "seed": 2026, "before_v11_share": 0.1,
        # Six of the 40 devices: self-tests that fail or stop, and one stuck button (seeded: the
        # same devices every run, whatever the run's tag); a device alert of each kind to look at.
        "misbehaviour": {"share": 0.15, "kinds": {"selftest_fail": 1.0, "selftest_skip": 1.0, "stuck_button": 2.0}},
        "provider": {"app_lost_share": 0.1},
        # Most homes have care plans (lunch, baths, help getting up, escorts): the platform plans
        # the day's routes at the start, and presses are inserted into them.
        "care": {"share": 0.8},
    },
    # One real-time day of a neighbourhood.
    "day": {"name": "day", "homes": 200, "providers": 30, "districts": 6, "speed": 1.0, "seed": 1,
            "care": {"share": 0.6}},
    # A city at scale: many connections, a quiet per-home rate.
    "city": {
        "name": "city", "homes": 5000, "providers": 300, "districts": 8, "speed": 1.0,
        "connect_rate": 500.0, "seed": 1,
    },
}
