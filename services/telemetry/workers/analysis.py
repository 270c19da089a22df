"""The analysis worker: after ingest commits (or every analysis_interval_s) it claims touched
minutes, recomputes their rollups (plain PostgreSQL) and runs the sample rules; it also acts on
due timers and, now and then, on ended nights. Replicas take turns through an advisory lock
for the rollups (one writer); timers are claimed row by row (SKIP LOCKED).

Claiming is a short transaction of its own, committed before the recompute and the rules, so
ingest (which locks the markers it writes) never waits for them; the claims are deleted with the
recompute, and a pass that fails or crashes leaves them for the next one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from homecare.db.migrate import Flavour, current_flavour
from services.telemetry import metrics
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store import rollups
from services.telemetry.store.alert_settings import limits_for
from services.telemetry.usecases import alert_actions, event_rules, nightly, sample_rules
from services.telemetry.usecases.context import Alerting

log = logging.getLogger(__name__)

# Session-level: held across the claim's transaction and the recompute's.
# Claims of `analysis_batch` minutes per pass of the worker's loop.
_ROUNDS_PER_PASS = 4

_LOCK = "SELECT pg_try_advisory_lock(hashtext('telemetry.analysis'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('telemetry.analysis'))"


class AnalysisWorker:
    """Keeps rollups current and runs the rules that look at stored data."""

    def __init__(self, pool: ConnectionPool, config: TelemetrySettings, defaults: RuleLimits, alerting: Alerting,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._pool = pool
        self._alerting = alerting
        self._config = config
        self._defaults = defaults
        self._clock = clock
        self._flavour: Flavour | None = None
        self._more = False  # the last pass stopped with touched minutes left
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """New samples were committed: analyse soon."""
        self._wake.set()

    # -- one step each (also what tests call) -----------------------------------------------

    def analyse_once(self, rounds: int | None = None) -> int:
        """Claim touched minutes until none are left (or another replica has the lock, or after
        `rounds` claims of `analysis_batch`), recompute their rollups and run the sample rules;
        how many minutes were handled."""
        handled = 0
        self._more = False
        with self._pool.connection() as conn:
            locked = _locked(conn)
            conn.commit()
            if not locked:
                return handled
            try:
                while True:
                    if rounds is not None and rounds <= 0:
                        self._more = True  # the rest in the next pass, after the timers
                        return handled
                    if rounds is not None:
                        rounds -= 1
                    with conn.transaction():
                        touched = rollups.lease_touched(conn, self._config.analysis_batch)
                    if not touched:
                        return handled
                    minutes = sum(len(t.minutes) for t in touched)
                    with conn.transaction():
                        if self._plain(conn):
                            rollups.recompute(conn, touched)
                        self._rules(conn, touched)
                        rollups.release(conn, touched)
                    handled += minutes
                    metrics.MINUTES_ANALYSED.inc(minutes)
            finally:
                _unlock(conn)

    def timers_once(self, now: datetime | None = None) -> list[str]:
        """Act on due timers; ids of alerts raised."""
        now = now or self._clock()
        with self._pool.connection() as conn, conn.transaction():
            return event_rules.run_due(conn, self._alerting, now, self.limits_of)

    def reannounce_once(self, now: datetime | None = None) -> list[str]:
        """Announce again the critical alerts nobody has acknowledged; their ids."""
        now = now or self._clock()
        with self._pool.connection() as conn, conn.transaction():
            return alert_actions.reannounce_due(conn, self._alerting, now)

    def nights_once(self, now: datetime | None = None) -> list[str]:
        """Compare ended nights with their baselines; ids of alerts raised."""
        now = now or self._clock()
        with self._pool.connection() as conn, conn.transaction():
            return nightly.check_nights(conn, now, self._defaults)

    def unconnected_once(self, now: datetime | None = None) -> list[str]:
        """Raise a fault for devices that never connected since provisioning; ids of alerts raised."""
        now = now or self._clock()
        with self._pool.connection() as conn, conn.transaction():
            return event_rules.check_never_connected(conn, self._alerting, now)

    def limits_of(self, conn: psycopg.Connection, resident_id: str) -> RuleLimits:
        """The limits in force for one resident."""
        return limits_for(conn, [resident_id], self._defaults)[resident_id]

    def _plain(self, conn: psycopg.Connection) -> bool:
        if self._flavour is None:
            self._flavour = current_flavour(conn)
        return self._flavour is Flavour.PLAIN

    def _rules(self, conn: psycopg.Connection, touched: list[rollups.Touched]) -> None:
        # A savepoint: a failing rule must not hold back the rollups (or retry them forever).
        try:
            with conn.transaction():
                sample_rules.evaluate(conn, touched, self._defaults, minutes_current=self._plain(conn))
        except Exception:
            metrics.RULE_ERRORS.labels("samples").inc()
            log.exception("sample rules failed for %d beds", len(touched))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry-analysis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def _run(self) -> None:
        next_timers = next_nights = 0.0
        while not self._stopping.is_set():
            self._wake.wait(self._config.analysis_interval_s)
            if self._stopping.is_set():
                break
            self._wake.clear()  # pokes from here on wake the next pass
            began = time.monotonic()
            # Bounded, so that due timers (a bed exit at night) do not wait for a backlog of
            # touched minutes; what is left is taken up at once after them.
            self._step("analysis", lambda: self.analyse_once(rounds=_ROUNDS_PER_PASS))
            clock = time.monotonic()
            if clock >= next_timers:
                self._step("timers", self.timers_once)
                self._step("reannounce", self.reannounce_once)
                next_timers = clock + self._config.timer_interval_s
            if clock >= next_nights:
                self._step("nights", self.nights_once)
                self._step("unconnected", self.unconnected_once)
                next_nights = clock + self._config.baseline_check_s
            if self._more:
                self._wake.set()
            else:  # paced: pokes meanwhile are coalesced into the next pass
                self._stopping.wait(max(0.0, began + self._config.analysis_min_interval_s - time.monotonic()))

    def _step(self, name: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:  # the database may be away: try again next round
            metrics.RULE_ERRORS.labels(name).inc()
            log.warning("telemetry %s step failed: %s", name, exc)


def _locked(conn: psycopg.Connection) -> bool:
    row = conn.execute(_LOCK).fetchone()
    return bool(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def _unlock(conn: psycopg.Connection) -> None:
    """Release the analysis lock; a connection that cannot is closed (which releases it), so it
    does not go back to the pool holding the lock."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(_UNLOCK)
        conn.commit()
    except psycopg.Error as exc:
        log.warning("closing a connection that could not release the analysis lock: %s", exc)
        conn.close()
