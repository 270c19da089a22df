"""Typed settings, read from the environment (prefix ``HOMECARE_``)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by every component; each component reads only what it needs.

    Each can also come from a file named after its variable in the folder HOMECARE_SECRETS_DIR
    names (Docker's and Kubernetes' secrets, e.g. /run/secrets/HOMECARE_SECRET_KEY), so that
    passwords need not be in the environment; a variable that is set wins over its file."""

    model_config = SettingsConfigDict(
        env_prefix="HOMECARE_", extra="ignore", secrets_dir=os.environ.get("HOMECARE_SECRETS_DIR") or None
    )

    # Empty means "start an embedded one" (demo and tests on a bare machine).
    database_url: str = ""
    # Connections a component's pool may open; 0: what the component needs (launch.cli).
    database_pool_max: int = Field(default=0, ge=0, le=200)
    mqtt_url: str = ""
    # Broker shards (homecare/shards.py): `name=url,...`, how the platform reaches each shard's
    # broker. Empty: one shard named `main` at mqtt_url. When set, mqtt_url defaults to the
    # first shard's url (what code that knows a single broker uses).
    mqtt_shards: str = ""
    # `name=url,...` told to devices when they are provisioned (`mqtt_url` of POST
    # /api/v1/devices); a shard not listed: its url above, without credentials.
    mqtt_public_urls: str = ""
    # `auto`: mosquitto when on PATH, else the in-process amqtt broker.
    embedded_broker: str = Field(default="auto", pattern="^(auto|mosquitto|amqtt)$")
    data_dir: str = ""  # where embedded broker/database keep their files; temp dir when empty
    # The internal log (NATS JetStream): `nats://host:4222`, several comma-separated for a
    # cluster. Empty means "start an embedded single node" (demo and tests on a bare machine).
    nats_url: str = ""
    # Copies of each stream kept by the cluster: 3 on a 3-node cluster (a publish is
    # acknowledged once a quorum stored it), 1 on a single node.
    log_replicas: int = Field(default=1, ge=1, le=5)
    # Prefix of every stream and durable consumer name, so two deployments (or test runs) on
    # one NATS server never share a stream: `HC` by default.
    log_namespace: str = Field(default="HC", pattern=r"^[A-Za-z0-9_-]+$")

    # Service accounts the platform components use on the broker.
    mqtt_service_username: str = ""
    mqtt_service_password: str = ""
    # Per-component accounts when one process runs several components (`homecare demo`):
    # component -> [username, password]; `for_component` puts one into the two fields above.
    mqtt_accounts: dict[str, tuple[str, str]] = Field(default_factory=dict)
    # The broker's account manager (mosquitto dynamic security), for the process that serves
    # POST/DELETE /api/v1/devices: mqtt://admin:password@host:port. Empty: an open broker.
    mqtt_admin_url: str = ""
    # Shared subscriptions ($share/<group>/...) let replicas of a service split a topic. Off by
    # default: mosquitto 2.0 queues nothing for a share group while none of its members is
    # connected, so across a broker restart (devices back first) it loses what devices send,
    # presses included; a plain subscription's persistent session keeps it. Turn on to scale a
    # service out, knowing that. Always off for amqtt, which has none.
    mqtt_shared_subscriptions: bool = False
    # Prefix of the share groups, so two deployments (or two test runs) on one broker never
    # split each other's messages: a group keeps a persistent session's share after it is gone.
    mqtt_share_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")

    # Names this replica: MQTT client ids are "<component>-<instance>", stable across restarts so
    # a persistent session resumes. Defaults to the host name (a container's name in compose).
    instance: str = ""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Behind a reverse proxy (TLS for the console: deploy/Caddyfile), the addresses of the proxies
    # whose X-Forwarded-For / -Proto are believed, comma-separated, or "*" where only the proxy can
    # reach this port. Empty: none, the peer's address is the client's. The sign-in throttle
    # counts by the client's address: without this, every user would share the proxy's.
    http_trusted_proxies: str = ""
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a terminal

    # A stuck button (homecare/buttons.py, which says why these defaults): presses of one key at
    # `min_rate_per_s` or more for `min_span_s`, no pause over `max_gap_s`. Shared so telemetry's
    # device alert and dispatch's intake agree on what is stuck.
    button_stuck_min_rate_per_s: float = Field(default=3.0, gt=0, le=50)
    button_stuck_min_span_s: float = Field(default=5.0, gt=0, le=600)
    button_stuck_max_gap_s: float = Field(default=1.0, gt=0, le=60)

    # Secret that signs console sessions; must be set outside development.
    secret_key: str = ""
    environment: str = Field(default="development", pattern="^(development|production)$")


    @model_validator(mode="after")
    def _shards(self) -> Settings:
        # Checked now, so a wrong shard setting stops a process at start with the reason.
        from homecare.shards import Shards, parse_pairs

        if self.mqtt_shards:
            shards = parse_pairs(self.mqtt_shards, "HOMECARE_MQTT_SHARDS")
            if not shards:
                raise ValueError("HOMECARE_MQTT_SHARDS names no shard")
            if not self.mqtt_url:
                self.mqtt_url = next(iter(shards.values()))
        if self.mqtt_url:
            Shards.from_settings(self)
        else:  # an embedded broker comes later: only the public urls can be checked now
            Shards.parse("", self.mqtt_public_urls, "mqtt://127.0.0.1:1883")
        return self

    @model_validator(mode="after")
    def _secret_key(self) -> Settings:
        # Secrets are never defaulted outside development.
        if not self.secret_key:
            if self.environment == "production":
                raise ValueError("HOMECARE_SECRET_KEY must be set in production")
            self.secret_key = secrets.token_urlsafe(32)
        return self

    def for_component(self, component: str) -> Settings:
        """These settings with the component's own broker account, when one is listed."""
        account = self.mqtt_accounts.get(component)
        if account is None:
            return self
        username, password = account
        return self.model_copy(
            update={"mqtt_service_username": username, "mqtt_service_password": password}
        )

    def share(self, group: str, topic_filter: str) -> str:
        """The subscription filter of a component's replicas: `$share/<ns><group>/<filter>`."""
        from homecare.topics import shared

        return shared(f"{self.mqtt_share_namespace}{group}", topic_filter, self.mqtt_shared_subscriptions)

    def client_id(self, component: str) -> str:
        """The MQTT client id of a component in this replica."""
        import socket

        return f"{component}-{self.instance or socket.gethostname()}"[:64]


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()
