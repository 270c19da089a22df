"""The one sender loop: claims due notices from a service's outbox, routes each once (the rules,
the resident's district and consenting family contacts), sends every pending delivery on its
channel outside any transaction, and records each result in the request's or alert's timeline
through the service's `Record` callback. A failed delivery is retried with a doubling wait until
`max_attempts`; the row keeps every delivery's state, so a crash between a send and its record
sends that one again after the claim's hold (at least once, never lost)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from homecare.errors import NotFound
from homecare.residents import store as residents

from .channels import Channel, DeliveryError
from .model import PENDING, SENT, Delivery, FamilyContact, Notice, attempted, backoff, route
from .outbox import NoticeOutbox, notice_of
from .settings import NotifySettings

log = logging.getLogger(__name__)

# Writes one line into the timeline of the notice's request or alert: (conn, subject id, kind,
# detail, at). Each service passes its own; the core never reads a service's tables.
Record = Callable[[psycopg.Connection, str, str, dict[str, Any], datetime], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def about(conn: psycopg.Connection, notice: Notice) -> tuple[Notice, list[FamilyContact]]:
    """The notice with the resident's name and district, and the resident's contacts as routing
    sees them."""
    if not notice.resident_id:
        return notice, []
    try:
        resident = residents.get(conn, notice.resident_id)
    except NotFound:
        return notice, []
    contacts = [FamilyContact(c.name, getattr(c, "email", None), c.phone, getattr(c, "notify", False) is True)
                for c in resident.contacts]
    return replace(notice, district=notice.district or resident.district, resident_name=resident.name), contacts


class NoticeSender:
    """Delivers one service's notices; `run_once` is one pass (what tests call)."""

    def __init__(
        self, pool: ConnectionPool, outbox: NoticeOutbox, config: NotifySettings, record: Record,
        channels: dict[str, Channel] | None = None, clock: Callable[[], datetime] = utc_now, batch: int = 20,
    ):
        self.pool = pool
        self.outbox = outbox
        self.config = config
        self.record = record
        self.channels = config.channels() if channels is None else channels
        self.clock = clock
        self.batch = batch
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> int:
        """Handle the notices due now (at most `batch`); how many were looked at."""
        handled = 0
        for _ in range(self.batch):
            if not self._one(now or self.clock()):
                break
            handled += 1
        return handled

    def _one(self, now: datetime) -> bool:
        hold = now + timedelta(seconds=self.config.lease_s)
        with self.pool.connection() as conn, conn.transaction():
            row = self.outbox.claim(conn, now, hold)
            if row is None:
                return False
            notice = notice_of(row["notice"])
            if row["deliveries"] is None:  # first look: who gets it
                notice, family = about(conn, notice)
                notice = replace(notice, link=self.config.link(notice.path) if notice.path else None)
                deliveries = route(notice, self.config.rules, family)
                done = None if deliveries else now
                self.outbox.save(conn, row["id"], notice, deliveries, None, done)
                if not deliveries:
                    return True  # no rule asks for it: nothing to send, nothing to record
                self.record(conn, notice.subject_id, "notification.queued", {
                    "trigger": notice.trigger, "severity": notice.severity,
                    "recipients": [f"{d.channel}:{d.to}" for d in deliveries],
                }, now)
            else:
                deliveries = [Delivery.from_json(d) for d in row["deliveries"]]
        results = [self._send(d, notice) if d.state == PENDING else d for d in deliveries]
        self._finish(row["id"], notice, deliveries, results)
        return True

    def _send(self, delivery: Delivery, notice: Notice) -> Delivery:
        channel = self.channels.get(delivery.channel)
        if channel is None:  # not configured: retrying cannot help
            return attempted(delivery, f"channel {delivery.channel} is not configured", max_attempts=0)
        try:
            channel.send(delivery.to, notice)
            error = None
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a channel's bug must not stop the loop; the reason is kept
            log.exception("notification channel %s failed", delivery.channel)
            error = f"{type(exc).__name__}: {exc}"
        return attempted(delivery, error, self.config.max_attempts)

    def _finish(self, notice_id: int, notice: Notice, before: list[Delivery], after: list[Delivery]) -> None:
        now = self.clock()
        pending = [d for d in after if d.state == PENDING]
        retry_at = None
        if pending:
            wait = backoff(max(d.attempts for d in pending), timedelta(seconds=self.config.retry_s),
                           timedelta(seconds=self.config.retry_max_s))
            retry_at = now + wait
        with self.pool.connection() as conn, conn.transaction():
            self.outbox.save(conn, notice_id, notice, after, retry_at, None if pending else now)
            for old, new in zip(before, after, strict=True):
                if new == old:
                    continue
                detail: dict[str, Any] = {"trigger": notice.trigger, "channel": new.channel, "to": new.to,
                                          "attempt": new.attempts}
                if new.family:
                    detail["family"] = True
                if new.state == SENT:
                    kind = "notification.sent"
                else:
                    kind = "notification.failed"
                    detail["reason"] = new.error
                    detail["retry_at" if new.state == PENDING else "gave_up"] = (
                        retry_at.isoformat() if new.state == PENDING and retry_at else True)
                self.record(conn, notice.subject_id, kind, detail, now)

    # -- lifecycle ---------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"notices-{self.outbox.schema}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:  # the database away: the notices wait in the outbox
                log.warning("notification sender (%s): %s", self.outbox.schema, exc)
            except Exception:
                log.exception("notification sender (%s) failed", self.outbox.schema)
            self._wake.wait(self.config.poll_s)
            self._wake.clear()
