"""Builds the gateway component: registry API, device edge, broker identity."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck, database_check
from homecare.settings import Settings

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
        accounts: BrokerAccounts,
    ):
        self.settings = settings
        self.config = config
        self.pool = pool
        self.cache = DeviceCache(pool, config.device_cache_ttl_s, config.unknown_device_ttl_s)
        self.admin = DeviceAdmin(accounts, self.cache)
        flood = flood_gate(config)
        self.log = internal_log.connect(settings, "gateway")
        # The lanes this process runs, control first: it starts first and stops last.
        self.edges = [Edge(settings, config, pool, self.cache, LANE_BY_NAME[name], flood, self.log)
                      for name in sorted(config.lane_names(), key=lambda n: n != "control")]
        by_lane = {edge.lane.name: edge for edge in self.edges}
        self.edge = by_lane.get("bulk")  # telemetry, statuses
        self.control = by_lane.get("control")  # presses, command acks and orders
        self._started = False

    def start(self) -> None:
        """Connect to the broker and start consuming device messages and command orders."""
        if not self._started:
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

    def edge_flowing(self) -> bool:
        """No lane holds a device message unacknowledged for longer than `stuck_after_s`."""
        return all(edge.oldest_unacked_s() <= self.config.stuck_after_s for edge in self.edges)

    def routers(self) -> list[APIRouter]:
        return [devices_router(self.admin)]

    def checks(self) -> dict[str, ReadinessCheck]:
        return {"database": database_check(self.pool),
                "broker": lambda: all(edge.link.connected and edge.output.connected for edge in self.edges),
                "edge": self.edge_flowing,
                "log": lambda: self.log.connected}


def build(
    settings: Settings, pool: ConnectionPool, config: GatewaySettings | None = None,
    accounts: BrokerAccounts | None = None,
) -> GatewayComponent:
    """The gateway on this pool; nothing connects until start()."""
    return GatewayComponent(settings, config or GatewaySettings(), pool, accounts or accounts_for(settings))


def accounts_for(settings: Settings) -> BrokerAccounts:
    """Device accounts on the broker: its account manager when configured, else none."""
    if settings.mqtt_admin_url:
        return DynsecAccounts(settings.mqtt_admin_url)
    return AnonymousBroker()
