"""Use cases of device administration: registry, broker identity and edge cache kept in step."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from homecare.contract import DeviceKind
from homecare.settings import get_settings
from homecare.shards import ShardError, Shards

from . import registry
from .accounts import BrokerAccounts
from .cache import DeviceCache
from .registry import Device


class DeviceAdmin:
    """Provisioning and decommissioning; the caller's connection owns the transaction.

    `accounts`: the account manager of each shard's broker, by shard name; or one for every shard
    (an anonymous broker, or a deployment of one shard). `shards`: the configured broker shards
    (default: from the process's settings).
    """

    def __init__(
        self, accounts: BrokerAccounts | Mapping[str, BrokerAccounts], cache: DeviceCache | None = None,
        shards: Shards | None = None,
    ):
        self.accounts = accounts
        self.shards = shards if shards is not None else Shards.from_settings(get_settings())
        self._cache = cache

    def accounts_of(self, shard: str) -> BrokerAccounts:
        """The account manager of a shard's broker; a ShardError for a shard not configured."""
        self.shards.get(shard)
        if isinstance(self.accounts, Mapping):
            if shard not in self.accounts:
                raise ShardError(f"no account manager for broker shard {shard!r}")
            return self.accounts[shard]
        return self.accounts

    def mqtt_url(self, device: Device) -> str:
        """The broker URL the device is told to use: its shard's public URL."""
        return self.shards.get(device.shard).public_url

    def provision(
        self, conn: psycopg.Connection, device_id: str, kind: DeviceKind, resident_id: str
    ) -> tuple[Device, str]:
        """Register a device on the shard with the fewest active devices and give it an account
        on that shard's broker; returns it and its one-time secret. The device keeps its shard
        for life. Two provisionings at once may both pick the same shard: the imbalance is at
        most the number of concurrent provisionings."""
        # With one shard there is nothing to balance, and no reason to count a city's devices
        # on every provisioning.
        counts = registry.active_per_shard(conn) if len(self.shards) > 1 else {}
        shard = self.shards.place(counts)
        device, secret = registry.provision(conn, device_id, kind, resident_id, shard.name)
        # If the broker refuses, this raises and the caller's transaction rolls back.
        self.accounts_of(shard.name).add_device(device.id, secret)
        if self._cache is not None:  # the id may be remembered as unknown
            self._cache.invalidate(device.id)
        return device, secret

    def revoke(self, conn: psycopg.Connection, device_id: str) -> Device:
        """Decommission a device: its shard's broker refuses it and the edge drops its messages."""
        device = registry.revoke(conn, device_id)
        self.accounts_of(device.shard).remove_device(device_id)
        if self._cache is not None:
            self._cache.invalidate(device_id)
        return device
