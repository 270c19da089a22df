"""The console's watch over the internal log's consumers: every few seconds it reads each durable
consumer's state from the server (one view, however many replicas of a service pull from it, and
also when none runs at all), records each time one gets stuck and recovers
(`ops.consumer_incidents`), and keeps the result for the API, the system page and the banner
every staff page shows.

Each console replica watches; recording is idempotent, so they agree on one incident."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.errors
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from homecare.log import Log
from homecare.log.health import STUCK_AFTER_S, ConsumerState, consumer_states

from . import incidents_data as incidents
from .dead_letters_api import LogUnavailable

log = logging.getLogger(__name__)

_UNAVAILABLE = "the internal log does not answer: the services' queues cannot be checked; try again shortly"


@dataclass(frozen=True)
class Snapshot:
    """Every consumer at one check, and since when each stuck one is stuck (its open incident's
    time when recorded, else what the check itself saw)."""

    checked_at: datetime
    consumers: list[ConsumerState]
    stuck_since: dict[str, datetime] = field(default_factory=dict)

    def stuck(self) -> list[ConsumerState]:
        return [c for c in self.consumers if c.stuck]

    def notices(self) -> list[str]:
        """One line per stuck consumer, for dispatchers."""
        return [notice(c) for c in self.stuck()]


def notice(state: ConsumerState) -> str:
    """What a dispatcher is told: what is delayed, where, and how long it has waited."""
    waited = f"{duration_text(state.oldest_unacked_s)} (limit {duration_text(state.stuck_after_s)})"
    if state.title == state.consumer:  # a consumer without a title
        return f"{state.consumer} is behind: a message has waited {waited}."
    return f"{state.title} are delayed: {state.consumer} has a message waiting {waited}."


def duration_text(seconds: float) -> str:
    """95 s, 4 min 10 s, 2 h 5 min."""
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def transitions(
    states: Iterable[ConsumerState], open_consumers: Iterable[str]
) -> tuple[list[ConsumerState], list[ConsumerState], list[str]]:
    """(newly stuck, still stuck, recovered): what a check changes, given the open incidents.
    A consumer with an open incident that is gone from the server has recovered too."""
    open_set = set(open_consumers)
    stuck = [s for s in states if s.stuck]
    stuck_names = {s.consumer for s in stuck}
    return ([s for s in stuck if s.consumer not in open_set], [s for s in stuck if s.consumer in open_set],
            sorted(open_set - stuck_names))


class ConsumerWatch:
    """Checks every `interval_s` on a thread of its own, once started; `current()` checks on
    demand when no recent check is at hand (a console that does not run the watch)."""

    def __init__(self, log_: Log, pool: ConnectionPool, interval_s: float = 5.0,
                 default_limit: float = STUCK_AFTER_S):
        self.log = log_
        self.pool = pool
        self.interval_s = interval_s
        self.default_limit = default_limit
        self._latest: Snapshot | None = None
        self._latest_at = 0.0  # monotonic
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="consumer-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def current(self) -> Snapshot:
        """A recent check; LogUnavailable when the log does not answer (asked again only after
        `interval_s`, so pages do not each wait for it)."""
        with self._lock:
            now = time.monotonic()
            if self._latest is not None and now - self._latest_at < 2 * self.interval_s + 1:
                return self._latest
            if self._failed_at is not None and now - self._failed_at < self.interval_s:
                raise LogUnavailable(_UNAVAILABLE)
            return self._check()

    def notices(self) -> list[str]:
        """The banner's lines from the latest check, never waiting for one (every staff page asks):
        one per stuck consumer, or one saying the check is not possible; none before the first."""
        latest, at, failed = self._latest, self._latest_at, self._failed_at
        if latest is not None and time.monotonic() - at < 2 * self.interval_s + 1:
            return latest.notices()
        if latest is None and failed is None:
            return []
        return ["Delays cannot be checked: the console does not reach the internal log."]

    def check(self) -> Snapshot:
        """Read every consumer now and record what changed."""
        with self._lock:
            return self._check()

    def _check(self) -> Snapshot:
        try:
            if not self.log.connected:  # not started, or away: asking would only wait
                raise RuntimeError("not connected")
            states = self.log.call(consumer_states(self.log, self.default_limit), 15)
        except (TimeoutError, RuntimeError, nats.errors.Error) as exc:
            self._failed_at = time.monotonic()
            log.warning("consumer watch: the log did not answer: %s", exc)
            raise LogUnavailable(_UNAVAILABLE) from None
        self._failed_at = None
        since = {s.consumer: s.stuck_since for s in states if s.stuck_since is not None}
        recorded = self._record(states)
        since.update({c: row["raised_at"] for c, row in recorded.items()})
        snapshot = Snapshot(datetime.now(UTC), states, since)
        self._latest, self._latest_at = snapshot, time.monotonic()
        return snapshot

    def _record(self, states: list[ConsumerState]) -> Mapping[str, dict]:
        """Raise, worsen and clear incidents; the ones open afterwards ({} when the database is away)."""
        namespace = self.log.namespace
        said: list[tuple[int, str]] = []
        try:
            with self.pool.connection() as conn:
                raised, ongoing, recovered = transitions(states, incidents.open_incidents(conn, namespace))
                for state in raised:
                    if incidents.raise_incident(conn, namespace, state):
                        said.append((logging.ERROR, f"consumer {state.consumer} is stuck: {notice(state)}"))
                for state in ongoing:
                    incidents.worsen(conn, namespace, state)
                for consumer in recovered:
                    if incidents.clear_incident(conn, namespace, consumer, datetime.now(UTC)):
                        said.append((logging.WARNING, f"consumer {consumer} recovered"))
                open_now = incidents.open_incidents(conn, namespace)
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("consumer watch: incidents not recorded: %s", exc)
            return {}
        for level, text in said:
            log.log(level, text, extra={"incident": "consumer_stuck"})
        return open_now

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
            except LogUnavailable:
                pass  # said in the log; the banner says it too
            except Exception:
                log.exception("consumer watch: check failed")
            self._stopping.wait(self.interval_s)
