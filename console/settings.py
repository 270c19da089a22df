"""Console settings, read from the environment (prefix ``HOMECARE_CONSOLE_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """What only the console reads; the secret key and environment come from `Settings`."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_CONSOLE_", extra="ignore")

    # The PostgreSQL channel dispatch NOTIFYs with a request id inside every change.
    channel: str = Field(default="dispatch_request_changed", pattern=r"^[a-z_][a-z0-9_]*$")
    # The channel telemetry NOTIFYs with an alert id inside every change of an alert.
    alert_channel: str = Field(default="telemetry_alert_changed", pattern=r"^[a-z_][a-z0-9_]*$")
    alert_limit: int = Field(default=100, ge=1, le=1000)  # unresolved alerts the board shows
    heartbeat_s: float = Field(default=15.0, gt=0)  # SSE comment, so proxies keep the stream
    coalesce_s: float = Field(default=0.1, ge=0)  # a burst of changes becomes one SSE event
    reconnect_max_s: float = Field(default=10.0, gt=0)  # backoff cap of the LISTEN connection
    active_limit: int = Field(default=200, ge=1, le=2000)
    recent_limit: int = Field(default=15, ge=0, le=200)
    sla_warn_minutes: float = Field(default=5.0, ge=0)  # countdown turns amber below this
    timezone: str = "Asia/Shanghai"  # where a report's days begin and end
    # How often the console reads every consumer of the internal log (the system page, the banner,
    # the incidents it records).
    consumer_check_s: float = Field(default=5.0, gt=0, le=300)
    banner_refresh_s: float = Field(default=15.0, ge=0.5, le=600)  # how often open pages ask again
    # None: Secure cookies in production only (development runs over plain http).
    cookie_secure: bool | None = None
