"""Use cases of device administration: registry, broker identity and edge cache kept in step."""

from __future__ import annotations

import psycopg

from homecare.contract import DeviceKind

from . import registry
from .accounts import BrokerAccounts
from .cache import DeviceCache
from .registry import Device


class DeviceAdmin:
    """Provisioning and decommissioning; the caller's connection owns the transaction."""

    def __init__(self, accounts: BrokerAccounts, cache: DeviceCache | None = None):
        self.accounts = accounts
        self._cache = cache

    def provision(
        self, conn: psycopg.Connection, device_id: str, kind: DeviceKind, resident_id: str
    ) -> tuple[Device, str]:
        """Register a device and give it a broker identity; returns it and its one-time secret."""
        device, secret = registry.provision(conn, device_id, kind, resident_id)
        # If the broker refuses, this raises and the caller's transaction rolls back.
        self.accounts.add_device(device.id, secret)
        if self._cache is not None:  # the id may be remembered as unknown
            self._cache.invalidate(device.id)
        return device, secret

    def revoke(self, conn: psycopg.Connection, device_id: str) -> Device:
        """Decommission a device: the broker refuses it and the edge drops its messages."""
        device = registry.revoke(conn, device_id)
        self.accounts.remove_device(device_id)
        if self._cache is not None:
            self._cache.invalidate(device_id)
        return device
