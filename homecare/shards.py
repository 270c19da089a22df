"""Broker shards: a city's devices spread over several mosquitto brokers.

Each device lives on one shard for life: provisioning places it (`Shards.place`), the registry
stores the shard's name (`gateway.devices.shard`), its broker account is made on that shard's
broker, and the API tells the device the shard's public URL (`mqtt_url`, http-v1). A gateway
process bridges one shard (`HOMECARE_GATEWAY_SHARD`).

Settings (`homecare.settings.Settings`):
- `HOMECARE_MQTT_SHARDS`: `name=url,name=url`, how platform components reach each shard's broker
  (e.g. `a=mqtt://10.0.0.5:1883,b=mqtt://10.0.0.6:1883`). Empty: one shard named `main` at
  `HOMECARE_MQTT_URL`.
- `HOMECARE_MQTT_PUBLIC_URLS`: `name=url,...`, what devices are told; a shard not listed: its
  internal URL without credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from homecare.mqtt import BrokerAddress

if TYPE_CHECKING:
    from homecare.settings import Settings

DEFAULT_SHARD = "main"  # the one shard of a deployment that names none
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_NAME = re.compile(NAME_PATTERN)


class ShardError(ValueError):
    """The shard settings are wrong, or name a shard that is not configured."""


@dataclass(frozen=True)
class Shard:
    """One broker of the city: `url` for the platform's components (it may carry credentials),
    `public_url` for devices (never credentials)."""

    name: str
    url: str
    public_url: str

    def address(self, username: str | None = None, password: str | None = None) -> BrokerAddress:
        """The shard's broker, with these credentials when given (a service's, the admin's)."""
        address = BrokerAddress.parse(self.url)
        return address.with_credentials(username, password) if username else address


def parse_pairs(text: str, variable: str) -> dict[str, str]:
    """`a=mqtt://h:1883, b=mqtt://h:1884` -> {"a": ..., "b": ...}, in order; a clear error for
    a bad entry, a bad name, a bad URL or a name given twice."""
    pairs: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not url:
            raise ShardError(f"{variable}: {entry!r} is not name=url (e.g. a=mqtt://10.0.0.5:1883)")
        if not _NAME.match(name):
            raise ShardError(f"{variable}: shard name {name!r} does not match {NAME_PATTERN}")
        if name in pairs:
            raise ShardError(f"{variable}: shard {name!r} is given twice")
        try:
            BrokerAddress.parse(url)
        except ValueError as exc:
            raise ShardError(f"{variable}: shard {name!r}: {exc}") from None
        pairs[name] = url
    return pairs


def without_credentials(url: str) -> str:
    """The broker URL a device may be told: scheme, host and port only."""
    address = BrokerAddress.parse(url)
    return BrokerAddress(address.host, address.port, tls=address.tls).url()


class Shards:
    """The configured shards, in the order configured (the first is the default of rows that
    predate shards, see gateway/migrations/0004_shards.sql)."""

    def __init__(self, shards: Iterable[Shard]):
        self._by_name: dict[str, Shard] = {}
        for shard in shards:
            if shard.name in self._by_name:
                raise ShardError(f"shard {shard.name!r} is given twice")
            self._by_name[shard.name] = shard
        if not self._by_name:
            raise ShardError("no broker shard configured: set HOMECARE_MQTT_URL or HOMECARE_MQTT_SHARDS")

    @classmethod
    def parse(cls, shards: str, public_urls: str, mqtt_url: str) -> Shards:
        """From the settings' text: `shards` (HOMECARE_MQTT_SHARDS; empty: `main` at `mqtt_url`)
        and `public_urls` (HOMECARE_MQTT_PUBLIC_URLS)."""
        internal = parse_pairs(shards, "HOMECARE_MQTT_SHARDS")
        if not internal:
            if not mqtt_url:
                raise ShardError("no broker: set HOMECARE_MQTT_URL or HOMECARE_MQTT_SHARDS")
            try:
                BrokerAddress.parse(mqtt_url)
            except ValueError as exc:
                raise ShardError(f"HOMECARE_MQTT_URL: {exc}") from None
            internal = {DEFAULT_SHARD: mqtt_url}
        public = parse_pairs(public_urls, "HOMECARE_MQTT_PUBLIC_URLS")
        unknown = sorted(set(public) - set(internal))
        if unknown:
            raise ShardError(
                f"HOMECARE_MQTT_PUBLIC_URLS names {_names(unknown)}, not a shard of"
                f" HOMECARE_MQTT_SHARDS ({_names(internal)})"
            )
        for name, url in public.items():
            if not url.startswith(("mqtt://", "mqtts://")):
                raise ShardError(f"HOMECARE_MQTT_PUBLIC_URLS: shard {name!r}: {url!r} is not"
                                 " mqtt://host:port or mqtts://host:port")
            if BrokerAddress.parse(url).username:
                raise ShardError(f"HOMECARE_MQTT_PUBLIC_URLS: shard {name!r}: a URL told to"
                                 " devices must not carry credentials")
        return cls(
            Shard(name, url, public.get(name) or without_credentials(url))
            for name, url in internal.items()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Shards:
        return cls.parse(settings.mqtt_shards, settings.mqtt_public_urls, settings.mqtt_url)

    def all(self) -> list[Shard]:
        return list(self._by_name.values())

    def names(self) -> list[str]:
        return list(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def first(self) -> Shard:
        return next(iter(self._by_name.values()))

    def get(self, name: str) -> Shard:
        """The shard of this name; a ShardError that says which exist when there is none."""
        shard = self._by_name.get(name)
        if shard is None:
            raise ShardError(f"no broker shard named {name!r} (configured: {_names(self._by_name)};"
                             " HOMECARE_MQTT_SHARDS)")
        return shard

    def place(self, active: Mapping[str, int]) -> Shard:
        """Where a new device goes: the shard with the fewest active devices (`active`: count by
        shard name; a shard missing from it has none), ties to the first name in sort order.
        A shard added later therefore gets every new device until it has caught up."""
        return min(self.all(), key=lambda s: (active.get(s.name, 0), s.name))

    def bridged(self, name: str) -> Shard:
        """The shard a gateway process bridges: `name` (HOMECARE_GATEWAY_SHARD), or the only one."""
        if name:
            try:
                return self.get(name)
            except ShardError as exc:
                raise ShardError(f"HOMECARE_GATEWAY_SHARD: {exc}") from None
        if len(self) > 1:
            raise ShardError(
                f"HOMECARE_GATEWAY_SHARD must name the shard this gateway bridges:"
                f" there are several ({_names(self._by_name)})"
            )
        return self.first


def first_name(settings: Settings) -> str:
    """The first configured shard's name, without needing its broker's URL (a migration's
    default for devices stored before there were shards)."""
    return next(iter(parse_pairs(settings.mqtt_shards, "HOMECARE_MQTT_SHARDS")), DEFAULT_SHARD)


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)
