"""The edge's in-memory view of the device registry, so telemetry costs no database round trip."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from . import registry
from .registry import DeviceRef

SETTLE_S = 10.0  # longer than a provisioning or revoking transaction takes to commit


class DeviceCache:
    """Active devices by id, read through from the database on a miss.

    `invalidate` makes a revocation take effect at once (the housekeeper also invalidates
    devices that other processes revoked); entries expire all the same, each after between half
    of `ttl_s` and all of it, so devices first seen together (a connect storm) are not all read
    again in the same second. Unknown ids
    are remembered for `unknown_ttl_s`, so a flood from an unprovisioned id does not become a
    flood of queries, and at most `max_entries` ids are kept.

    `shard` is the broker shard the edge bridges (None: any): the cache still returns a device of
    another shard, with its shard, so that the edge can tell it why it is refused.
    """

    def __init__(
        self, pool: ConnectionPool, ttl_s: float = 600.0, unknown_ttl_s: float = 5.0,
        max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic,
        shard: str | None = None,
    ):
        self.shard = shard
        self._max = max_entries
        self._pool = pool
        self._ttl = ttl_s
        self._unknown_ttl = unknown_ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[DeviceRef | None, float]] = {}
        self._volatile: dict[str, float] = {}  # id -> until when lookups are not cached
        self._lock = threading.Lock()

    def get(self, device_id: str) -> DeviceRef | None:
        """The active device, or None when unknown or revoked."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(device_id)
            volatile = self._volatile.get(device_id, 0.0) > now
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._pool.connection() as conn:
            ref = registry.lookup(conn, device_id)
        if volatile:
            return ref
        expires = now + (self._known_ttl() if ref is not None else self._unknown_ttl)
        with self._lock:
            if len(self._entries) >= self._max:
                self._prune(now)
            self._entries[device_id] = (ref, expires)
        return ref

    def remember(self, refs: list[DeviceRef]) -> None:
        """Cache active devices read by some other query (a batch of statuses), so their next
        messages cost no lookup; devices invalidated a moment ago are left to be read again."""
        now = self._clock()
        with self._lock:
            for ref in refs:
                if self._volatile.get(ref.id, 0.0) > now:
                    continue
                if len(self._entries) >= self._max:
                    self._prune(now)
                self._entries[ref.id] = (ref, now + self._known_ttl())

    def _known_ttl(self) -> float:
        return self._ttl * random.uniform(0.5, 1.0)

    def _prune(self, now: float) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[1] > now and v[0] is not None}
        if len(self._entries) >= self._max:  # still full of live devices: start over
            self._entries.clear()

    def invalidate(self, device_id: str) -> None:
        """Forget a device, and read it from the database without caching for a while.

        Called before the change commits: until then a lookup still sees the old row, and
        caching that would undo the invalidation.
        """
        with self._lock:
            self._entries.pop(device_id, None)
            if len(self._volatile) > 10_000:
                now = self._clock()
                self._volatile = {k: v for k, v in self._volatile.items() if v > now}
            self._volatile[device_id] = self._clock() + SETTLE_S

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._volatile.clear()
