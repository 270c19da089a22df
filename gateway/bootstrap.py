"""Builds the gateway component: registry API, device edge, broker identity."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck, database_check
from homecare.mqtt import BrokerAddress
from homecare.settings import Settings
from homecare.shards import Shard, ShardError, Shards

from . import registry
from .accounts import AnonymousBroker, BrokerAccounts
from .api import devices_router
from .cache import DeviceCache
from .dynsec import DynsecAccounts
from .edge import LANE_BY_NAME, Edge, flood_gate
from .service import DeviceAdmin
from .settings import GatewaySettings

log = logging.getLogger(__name__)


class GatewayComponent:
    """The gateway as a homecare.runtime.Component."""

    name = "gateway"

    def __init__(
        self, settings: Settings, config: GatewaySettings, pool: ConnectionPool,
        accounts: BrokerAccounts | Mapping[str, BrokerAccounts],
    ):
        self.settings = settings
        self.config = config
        self.pool = pool
        self.shards = Shards.from_settings(settings)
        # The shard this process bridges. The console builds the gateway only for its routes:
        # with several shards and none named, it has no edge, and start() says why.
        self._unbridged: ShardError | None = None
        try:
            self.shard: Shard | None = config.bridged_shard(settings)
        except ShardError as exc:
            self.shard, self._unbridged = None, exc
        self.cache = DeviceCache(pool, config.device_cache_ttl_s, config.unknown_device_ttl_s,
                                 shard=self.shard.name if self.shard else None)
        self.admin = DeviceAdmin(accounts, self.cache, self.shards)
        flood = flood_gate(config)
        self.log = internal_log.connect(settings, "gateway")
        # The lanes this process runs, control first: it starts first and stops last.
        lanes = sorted(config.lane_names(), key=lambda n: n != "control") if self.shard else []
        self.edges = [Edge(settings, config, pool, self.cache, LANE_BY_NAME[name], flood, self.log)
                      for name in lanes]
        by_lane = {edge.lane.name: edge for edge in self.edges}
        self.edge = by_lane.get("bulk")  # telemetry, statuses
        self.control = by_lane.get("control")  # presses, command acks
        self._started = False

    def start(self) -> None:
        """Connect to the broker and start consuming device messages."""
        if not self._started:
            if self._unbridged is not None:
                raise self._unbridged
            self._check_stored_shards()
            self.log.start()  # before any device message is taken: forwards go there
            started: list[Edge] = []
            try:
                for edge in self.edges:
                    edge.start()
                    started.append(edge)
            except Exception:
                for edge in reversed(started):
                    edge.stop()
                self.log.stop()
                raise
            self._started = True

    def stop(self) -> None:
        """Stop consuming, disconnect cleanly and write what is buffered."""
        if self._started:
            for edge in reversed(self.edges):
                edge.stop()
            self.log.stop()  # after the lanes: their forwards in flight are waited for
            self._started = False

    def _check_stored_shards(self) -> None:
        """Warn of active devices stored on a shard that is not configured (a deployment that
        renamed its broker after the migration gave its devices the name `main`): no gateway
        bridges them, and their revocation fails until the shard is named again."""
        try:
            with self.pool.connection() as conn:
                stored = registry.active_per_shard(conn)
        except Exception as exc:  # the database away: the edge copes with that on its own
            log.warning("could not check the devices' shards: %s", exc)
            return
        unknown = {name: n for name, n in stored.items() if name not in self.shards}
        if unknown:
            log.warning(
                "active devices are stored on broker shards that HOMECARE_MQTT_SHARDS does not"
                " name: %s; name their broker so in HOMECARE_MQTT_SHARDS",
                ", ".join(f"{name!r} ({n})" for name, n in sorted(unknown.items())),
                extra={"shards": sorted(unknown)},
            )

    def edge_flowing(self) -> bool:
        """No lane holds a device message unacknowledged for longer than `stuck_after_s`."""
        return all(edge.oldest_unacked_s() <= self.config.stuck_after_s for edge in self.edges)

    def routers(self) -> list[APIRouter]:
        return [devices_router(self.admin)]

    def checks(self) -> dict[str, ReadinessCheck]:
        return {"database": database_check(self.pool),
                "broker": lambda: all(edge.link.connected for edge in self.edges),
                "edge": self.edge_flowing,
                "log": lambda: self.log.connected}


def build(
    settings: Settings, pool: ConnectionPool, config: GatewaySettings | None = None,
    accounts: BrokerAccounts | Mapping[str, BrokerAccounts] | None = None,
) -> GatewayComponent:
    """The gateway on this pool; nothing connects until start()."""
    return GatewayComponent(settings, config or GatewaySettings(), pool, accounts or accounts_for(settings))


def accounts_for(settings: Settings) -> BrokerAccounts | dict[str, BrokerAccounts]:
    """Device accounts on each shard's broker: its account manager when configured, else none.

    HOMECARE_MQTT_ADMIN_URL names the account manager; with several shards its user and password
    are used on each shard's host and port (every shard's dynamic-security file has the same
    admin account, see `python -m gateway.broker_config`)."""
    if not settings.mqtt_admin_url:
        return AnonymousBroker()
    shards = Shards.from_settings(settings)
    if len(shards) == 1:
        return DynsecAccounts(settings.mqtt_admin_url)
    admin = BrokerAddress.parse(settings.mqtt_admin_url)
    return {shard.name: DynsecAccounts(shard.address(admin.username, admin.password))
            for shard in shards.all()}
