"""Sign-in throttling: failed attempts per username and per client address, a lockout that
doubles with each further failure, and a way for an admin to lift it.

Kept in the memory of the process that serves the sign-ins (one per app): a process restart
forgets it, and replicas count separately, so N replicas let N times as many guesses through.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from . import audit
from .users import AuthError, User, authenticate

log = logging.getLogger(__name__)


@dataclass
class _Count:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class Lockout:
    """A lockout that started: the key (`user:<name>` or `addr:<ip>`), after how many failures,
    for how long."""

    key: str
    failures: int
    seconds: float


class LockedOut(Exception):
    """Too many failed sign-ins; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float, what: str):
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-ins for this {what}; try again in {self.retry_after} s")


class LoginThrottle:
    """Counts failures per key (`user:<name>`, `addr:<ip>`) and locks a key out for a while."""

    def __init__(
        self, free_per_user: int = 5, free_per_address: int = 20, base_s: float = 1.0,
        max_s: float = 900.0, window_s: float = 900.0, clock: Callable[[], float] = time.monotonic,
    ):
        self.free = {"user": free_per_user, "addr": free_per_address}
        self.base_s, self.max_s, self.window_s = base_s, max_s, window_s
        self.clock = clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> LoginThrottle:
        return cls(settings.free_failures_per_user, settings.free_failures_per_address,
                   settings.lockout_base_s, settings.lockout_max_s, settings.failure_window_s)

    @staticmethod
    def _keys(username: str, address: str | None) -> list[str]:
        keys = [f"user:{username.strip().lower()}"]
        if address:
            keys.append(f"addr:{address}")
        return keys

    def check(self, username: str, address: str | None) -> None:
        """LockedOut when the username or the address may not try now."""
        now = self.clock()
        with self._lock:
            for key in self._keys(username, address):
                count = self._counts.get(key)
                if count is not None and count.locked_until > now:
                    raise LockedOut(count.locked_until - now, "account" if key[0] == "u" else "address")

    def failed(self, username: str, address: str | None) -> list[Lockout]:
        """Count a failure; past the free ones, lock the key out for a doubling time. Returns the
        lockouts this failure started."""
        now = self.clock()
        started: list[Lockout] = []
        with self._lock:
            for key in self._keys(username, address):
                count = self._counts.setdefault(key, _Count())
                if now - count.last_failure > self.window_s:
                    count.failures = 0
                count.failures += 1
                count.last_failure = now
                excess = count.failures - self.free[key.split(":", 1)[0]]
                if excess > 0:
                    seconds = min(self.max_s, self.base_s * 2 ** min(excess - 1, 30))
                    count.locked_until = now + seconds
                    started.append(Lockout(key, count.failures, seconds))
                    log.warning("sign-in lockout: %s after %d failures, for %.0f s", key, count.failures, seconds)
            self._forget_old(now)
        return started

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._counts.pop(self._keys(username, None)[0], None)

    def lift(self, username: str, by: str) -> bool:
        """An admin ends a username's lockout; whether there was anything to lift."""
        with self._lock:
            count = self._counts.pop(self._keys(username, None)[0], None)
        log.warning("sign-in lockout of user:%s lifted by %s", username, by)
        return count is not None

    def _forget_old(self, now: float) -> None:
        if len(self._counts) < 10_000:
            return
        stale = [k for k, c in self._counts.items()
                 if now - c.last_failure > self.window_s and c.locked_until <= now]
        for key in stale:
            del self._counts[key]


def sign_in(
    throttle: LoginThrottle, conn: psycopg.Connection, username: str, password: str, address: str | None
) -> User:
    """`authenticate` behind the throttle: LockedOut, AuthError (counted) or the user. A lockout
    that a failure starts is written to the audit log on `conn`: the caller commits also when
    this raises AuthError (nothing else was written)."""
    throttle.check(username, address)
    try:
        user = authenticate(conn, username, password)
    except AuthError:
        for lockout in throttle.failed(username, address):
            audit.record(conn, audit.SYSTEM, "lockout", lockout.key,
                         {"failures": lockout.failures, "seconds": lockout.seconds})
        raise
    throttle.succeeded(username)
    return user
