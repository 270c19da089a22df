"""Gateway settings, read from the environment (prefix ``HOMECARE_GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from homecare.settings import Settings
from homecare.shards import Shard, Shards


class GatewaySettings(BaseSettings):
    """Tuning of the device edge; the defaults suit one broker and a few thousand devices."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_GATEWAY_", extra="ignore")

    # Status messages are applied in batches, one transaction each: a batch is written as soon
    # as the worker has nothing else queued, or when its oldest status is this old, or full. A
    # connect storm then costs one commit per batch instead of one per device.
    status_window_ms: int = Field(default=50, ge=0, le=5000)
    status_max_batch: int = Field(default=200, ge=1)

    # How often buffered last_seen stamps, rejection counts and PUBACK marks are written.
    flush_interval_s: float = Field(default=1.0, gt=0)
    # How often silent beds are detected and owed announcements re-sent.
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # A bed is silent after this many report intervals without a message (at least silent_min_s).
    silent_after_intervals: int = Field(default=3, ge=1)
    silent_min_s: int = Field(default=30, ge=1)
    # A state change whose announcement was not PUBACKed within this time is announced again.
    announce_retry_s: int = Field(default=30, ge=1)

    # The in-memory device registry: how long an entry is trusted before it is re-read. Devices
    # revoked by another process are invalidated by the sweep well before that.
    device_cache_ttl_s: float = Field(default=600.0, ge=0)
    unknown_device_ttl_s: float = Field(default=5.0, ge=0)

    # Flood control (gateway/flood.py): each device's budget of messages, all channels together,
    # as a token bucket: `device_rate_per_s` sustained, `device_burst` at once. A bed reports
    # every 10 s and a button a few times a day; 5/s is far above either.
    device_rate_per_s: float = Field(default=5.0, gt=0)
    device_burst: int = Field(default=30, ge=1)
    # Over budget, an event of a (type, service) not passed for this long still passes.
    flood_event_repeat_s: float = Field(default=60.0, ge=0)
    # A throttled device is told on `errors` at most this often.
    flood_reply_every_s: float = Field(default=5.0, ge=0)
    # Over budget, telemetry whose first sample is older than this is a backlog and passes.
    flood_backlog_s: float = Field(default=60.0, ge=1)

    # A lane whose oldest received, not yet acknowledged device message is older than this is
    # stuck: the gateway reports not ready (/readyz) until it is acknowledged.
    stuck_after_s: float = Field(default=30.0, gt=0)

    # How much of a rejected payload the warning log shows.
    log_payload_bytes: int = Field(default=200, ge=0)
    # Messages waiting for the worker; the broker holds the rest (its in-flight window).
    queue_size: int = Field(default=10000, ge=100)

    # The edge's lanes this process runs (gateway/edge.py): both by default; "control" and "bulk"
    # in processes of their own keep a call for help off the interpreter that parses samples.
    lanes: str = Field(default="bulk,control", pattern=r"^(bulk|control)(,(bulk|control))?$")

    # The broker shard this process bridges (a name of HOMECARE_MQTT_SHARDS, homecare/shards.py):
    # required when there are several; empty: the only one. Its liveness sweeps judge only that
    # shard's devices, and it refuses (`wrong_shard`) messages of a device provisioned on another.
    shard: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]{0,31})?$")

    def bridged_shard(self, settings: Settings) -> Shard:
        """The shard this gateway bridges; a ShardError (a ValueError) that says why not."""
        return Shards.from_settings(settings).bridged(self.shard)

    def lane_names(self) -> list[str]:
        return list(dict.fromkeys(name.strip() for name in self.lanes.split(",")))
