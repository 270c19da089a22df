"""The timer loop: every timer is a row (offer deadlines, SLA clocks, queued requests, planned
shifts, commands' deadlines, requests a press opened and nobody has offered yet, escalated
requests nobody has taken, announced again), so a restarted
or a second replica resumes them. The intake wakes it for a new request, which it offers at once.
Rows are claimed one at a time with `SKIP LOCKED` row locks, each in its own transaction: two
replicas work side by side, and a failing item undoes nothing else. The transactions commit
without waiting for the disk: what they decide follows from rows that stay as they were if a
database crash loses the commit, so the next tick decides it again.

The loop reaches storage only through the context's repositories and its `Transactions`, so the
same ticks run on PostgreSQL in the service and in memory in the dispatch benchmark."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from .. import metrics, queries
from ..store import outbox
from ..usecases.announce import reannounce
from ..usecases.context import Dispatch
from ..usecases.delivery import expire as expire_command
from ..usecases.offering import expire_offer, offer_or_queue, withdraw_from_unreachable
from ..usecases.plans import evening_day, flag_missed, plan_evening, release
from ..usecases.ports import Transactions, Tx
from ..usecases.progress import escalate_if_overdue, flag_if_at_risk, flag_if_late
from ..usecases.providers import apply_shift_end, apply_shift_start

log = logging.getLogger(__name__)

_GAUGE_EVERY_S = 10.0


class TimerLoop:
    def __init__(
        self, transactions: Transactions, ctx: Dispatch, *, interval_s: float = 1.0, batch_size: int = 50,
        gauges: Callable[[], None] | None = None,
    ):
        self.transactions = transactions
        self.ctx = ctx
        self.gauges = gauges  # updates the request and command gauges (every _GAUGE_EVERY_S)
        self.interval_s = interval_s
        self.batch_size = batch_size
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._gauges_at = 0.0
        self.fired: dict[str, int] = {}  # totals since start, per kind of timer
        self._queue_at: datetime | None = None  # the last pass over the queue
        self._evening: date | None = None  # the last day the evening planning run was tried for
        self.evening_run: threading.Thread | None = None  # the latest evening planning run

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dispatch-timers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._woken.set()
        if self._thread:
            self._thread.join(timeout)
        if self.evening_run:
            self.evening_run.join(timeout)

    def wake(self) -> None:
        """A request was opened without an offer: offer it now, not at the next tick."""
        self._woken.set()

    def _run(self) -> None:
        next_tick = time.monotonic() + self.interval_s
        while not self._stopping.is_set():
            woken = self._woken.wait(max(next_tick - time.monotonic(), 0.0))
            if self._stopping.is_set():
                break
            self._woken.clear()
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.interval_s
                    self.tick()
                elif woken:
                    self.offer_fresh()
            except psycopg.OperationalError as exc:
                log.warning("timer loop lost the database: %s", exc)
            except Exception:
                log.exception("timer tick failed")

    def offer_fresh(self, now: datetime | None = None) -> int:
        """Offer the requests opened since the last look (a press is acknowledged first, then
        offered here); how many were."""
        now = now or self.ctx.clock()
        repos = self.ctx.repos
        return self._each(
            lambda conn: repos.requests.fresh(conn, 1), lambda conn, rid: _offer_fresh(conn, self.ctx, rid, now),
        )

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """One pass over every kind of timer; returns how many of each fired."""
        now = now or self.ctx.clock()
        repos = self.ctx.repos
        n = 1  # claimed one at a time; see _each
        # (service, priority) whose providers are all busy: in a morning peak hundreds of requests
        # wait, and trying each one every pass kept the database from the presses coming in.
        full: set[tuple[str, int]] = set()
        fired = {
            "offered_fresh": self.offer_fresh(now),
            "shifts_started": self._each(
                lambda conn: repos.shifts.to_start(conn, now, n),
                lambda conn, s: apply_shift_start(conn, self.ctx, s, now),
            ),
            "shifts_ended": self._each(
                lambda conn: repos.shifts.to_end(conn, now, n),
                lambda conn, s: apply_shift_end(conn, self.ctx, s, now),
            ),
            "offers_expired": self._each(
                lambda conn: [oid for oid, _ in repos.offers.due(conn, now, n)],
                lambda conn, oid: expire_offer(conn, self.ctx, oid, now) is not None,
            ),
            # An offer out to a provider whose app went quiet does not wait for its time-out.
            "offers_unreachable": self._each(
                lambda conn: [oid for oid, _ in repos.offers.to_unreachable(conn, now - self.ctx.presence_timeout, n)],
                lambda conn, oid: withdraw_from_unreachable(conn, self.ctx, oid, now) is not None,
            ),
            "escalated": self._each(
                lambda conn: repos.requests.overdue_waiting(conn, now, n),
                lambda conn, rid: escalate_if_overdue(conn, self.ctx, rid, now),
            ),
            "at_risk": self._each(
                lambda conn: repos.requests.warn_due(conn, now, n),
                lambda conn, rid: flag_if_at_risk(conn, self.ctx, rid, now),
            ),
            "requeued": self._each(
                lambda conn, seen: repos.requests.queued(conn, n, seen, full),
                lambda conn, rid: _offer_queued(conn, self.ctx, rid, now, full),
                whole=True,
            ) if self._queue_due(now) else 0,
            # A care plan's visit becomes a request on its provider's route a lead time before its window.
            "plans_released": self._each(
                lambda conn: repos.plans.to_release(conn, now, self.ctx.plan_release_lead, n),
                lambda conn, stop: release(conn, self.ctx, stop, now) is not None,
            ),
            # Before "late": a planned visit nobody set off for by its window's end is missed.
            "plans_missed": self._each(
                lambda conn: repos.plans.missed_due(conn, now, n),
                lambda conn, rid: flag_missed(conn, self.ctx, rid, now),
            ),
            "late": self._each(
                lambda conn: repos.requests.maybe_late(conn, now, n),
                lambda conn, rid: flag_if_late(conn, self.ctx, rid, now),
            ),
            "reannounced": self._each(
                lambda conn: repos.requests.reannounce_due(
                    conn, now, self.ctx.reannounce.every, list(self.ctx.reannounce.services), n),
                lambda conn, rid: reannounce(conn, self.ctx, rid, now),
            ),
            "commands_expired": self._each(
                lambda conn: repos.outbox.overdue(conn, now, n),
                lambda conn, oid: expire_command(conn, self.ctx, oid, now),
            ),
        }
        self._plan_evening(now)
        for kind, n in fired.items():
            self.fired[kind] = self.fired.get(kind, 0) + n
        self._update_gauges(now)
        return fired

    def _plan_evening(self, now: datetime) -> None:
        """From the evening hour on, plan tomorrow once (unless someone has), in a thread of its
        own: the solver's seconds must not hold up offers and clocks."""
        day = evening_day(self.ctx, now)
        if day is None or day == self._evening:
            return
        self._evening = day

        def run() -> None:
            try:
                plan_evening(self.transactions, self.ctx, now)
            except Exception:
                log.exception("the evening planning run for %s failed", day)

        self.evening_run = threading.Thread(target=run, name="dispatch-plan-evening", daemon=True)
        self.evening_run.start()

    def _queue_due(self, now: datetime) -> bool:
        """The queue is walked, most urgent first, once per requeue interval."""
        if self._queue_at is not None and now - self._queue_at < self.ctx.requeue:
            return False
        self._queue_at = now
        return True

    def _each(
        self, claim: Callable[..., list], act: Callable[[Tx, Any], bool], whole: bool = False
    ) -> int:
        """Claim and handle one item per transaction, so row locks (requests, providers) are held
        for one item only and intake is never kept waiting behind a whole batch. `whole`: walk
        every item once, in the claim's order (the claim is told which it has seen)."""
        fired, seen = 0, set()
        for _ in range(self.batch_size):
            with self.transactions.begin() as conn:
                items = claim(conn, seen) if whole else claim(conn)
                if not items:
                    return fired
                item = items[0]
                key = item["id"] if isinstance(item, dict) else item
                if key in seen:  # handled this tick and still due: leave it to the next tick
                    return fired
                seen.add(key)
                try:
                    with self.transactions.savepoint(conn):
                        fired += bool(act(conn, item))
                except Exception:
                    log.exception("timer action on %s failed", key)
                    return fired
        return fired

    def _update_gauges(self, now: datetime) -> None:
        if self.gauges is None or now.timestamp() - self._gauges_at < _GAUGE_EVERY_S:
            return
        self._gauges_at = now.timestamp()
        self.gauges()


def postgres_gauges(pool: ConnectionPool) -> Callable[[], None]:
    """The gauges of requests by status and of held commands, read from PostgreSQL."""
    def update() -> None:
        with pool.connection() as conn:
            for status, n in queries.count_by_status(conn).items():
                metrics.REQUESTS_BY_STATUS.labels(status).set(n)
            metrics.COMMANDS_HELD.set(outbox.held_count(conn))
    return update


def _offer_fresh(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """A request nobody has tried to offer yet: its first offer, or its place in the queue."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    offer_or_queue(conn, ctx, request, now)
    return True


def _offer_queued(
    conn: Tx, ctx: Dispatch, request_id: str, now: datetime, full: set[tuple[str, int]]
) -> bool:
    """A queued request's turn (most urgent first): offer it if a provider has room now. Adds its
    (service, priority) to `full` when every provider of it is busy for any such request."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    after, decision = offer_or_queue(conn, ctx, request, now)
    if decision.full:
        full.add((request.service.value, request.priority))
    return after.status is not request.status or decision.choice is not None  # escalated ones stay escalated
