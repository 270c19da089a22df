"""Dead letters for operators: what a consumer of the internal log gave up on, and why; replay it
into its stream once the cause is fixed, or discard it. `GET /api/v1/dead-letters` (admins and
dispatchers), `POST /api/v1/dead-letters/{seq}/replay` and `DELETE /api/v1/dead-letters/{seq}`
(admins).

Dispatchers may read the list: a dead-lettered button press is a call for help that never became
a request, and at night the dispatcher is the one who can phone that resident. Replaying and
discarding change what the services consume, so they are an admin's, who can fix the cause first.

`DeadLetterDesk` is the one place that talks to the log: the API's routes and the console's page
use it, and it turns the log's failures into domain errors (an unknown letter is NotFound, the log
away is LogUnavailable, 503), which the app maps to HTTP; each replay and discard is logged with
its actor, as other admin actions are.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

import nats.errors
from fastapi import APIRouter, Path, Query, Response
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from homecare.api.deps import AdminUser, DispatcherUser
from homecare.api.guard import INT64
from homecare.api.openapi import ERROR
from homecare.auth import User, audit
from homecare.errors import NotFound, Unavailable
from homecare.log import Log
from homecare.log import dead_letters as letters
from homecare.residents import store as residents

log = logging.getLogger(__name__)

T = TypeVar("T")
LIMIT_DEFAULT = 100
LIMIT_MAX = 500
PAYLOAD_MAX = 4096  # bytes of a payload an answer carries; payload_size says how big it was
# Letters one page reads at most, however few of them are a district dispatcher's: a page's cost is
# bounded, and its `next` tells where to go on.
SCAN_MAX = 5000
NEXT_HEADER = "X-Next-After"


class LogUnavailable(Unavailable):
    """The internal log does not answer (not connected yet, or away)."""


class DeadLetterOut(BaseModel):
    """One dead letter: where it came from, why its consumer gave up, and (the start of) its payload."""

    seq: int = Field(description="Its id in the dead-letter stream: what replay and discard take.")
    consumer: str = Field(description="The durable consumer that gave up on it.")
    subject: str = Field(description="Where it came from, and where a replay puts it again.")
    reason: str
    deliveries: int = Field(description="How many times it was delivered before it was given up on.")
    failed_at: datetime | None = Field(description="When the consumer gave up on it.")
    stored_at: datetime | None = Field(description="When the dead-letter stream stored it.")
    payload: str = Field(description="The payload as text when it is UTF-8, else base64 (see payload_base64).")
    payload_base64: bool
    payload_size: int = Field(description="Size of the whole payload in bytes.")
    payload_truncated: bool = Field(description=f"Only the first {PAYLOAD_MAX} bytes are given.")


def payload_view(data: bytes, limit: int = PAYLOAD_MAX) -> tuple[str, bool, bool]:
    """(text, is base64, truncated): UTF-8 text as text, anything else as base64, of at most
    `limit` bytes (text cut at a character boundary)."""
    head, truncated = data[:limit], len(data) > limit
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(head).decode("ascii"), True, truncated
    return head.decode("utf-8", errors="ignore"), False, truncated  # "ignore": only a cut character


def _when(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def letter_out(letter: letters.DeadLetter, limit: int = PAYLOAD_MAX) -> DeadLetterOut:
    text, encoded, truncated = payload_view(letter.payload, limit)
    return DeadLetterOut(
        seq=letter.seq, consumer=letter.consumer, subject=letter.subject, reason=letter.reason,
        deliveries=letter.deliveries, failed_at=_when(letter.failed_at), stored_at=letter.stored_at,
        payload=text, payload_base64=encoded, payload_size=len(letter.payload), payload_truncated=truncated,
    )


@dataclass(frozen=True)
class LetterPage:
    """A page of dead letters and where the next one starts: the seq to page on from (`after` or
    `before`), None when the log holds no more. Kept apart from the letters because a district
    dispatcher's page skips other districts' letters: its last letter is not where reading stopped."""

    letters: list[DeadLetterOut]
    next: int | None


class DeadLetterDesk:
    """The dead letters of this deployment's log, for operators."""

    def __init__(self, log_: Log, pool: ConnectionPool):
        self.log = log_
        self.pool = pool  # for the audit log and the devices' districts

    def oldest(self, after: int = 0, limit: int = LIMIT_DEFAULT, preview: int = PAYLOAD_MAX,
               districts: frozenset[str] | None = None) -> LetterPage:
        """Oldest first, with a sequence above `after`; of `districts` only (None: all)."""
        return self._page(letters.dead_letters, after, limit, preview, districts)

    def newest(self, before: int | None = None, limit: int = LIMIT_DEFAULT,
               preview: int = PAYLOAD_MAX, districts: frozenset[str] | None = None) -> LetterPage:
        """Newest first, with a sequence below `before` (all when None); of `districts` only."""
        return self._page(letters.latest, before, limit, preview, districts)

    def _page(self, read: Callable[..., list[letters.DeadLetter]], cursor: int | None, limit: int,
              preview: int, districts: frozenset[str] | None) -> LetterPage:
        """Reads the log a batch at a time from `cursor` on until `limit` letters of `districts`
        are found or the log ends. A district's letters can be rare among the city's, so reading
        stops after SCAN_MAX letters however few it kept; `next` then says where to go on."""
        kept: list[letters.DeadLetter] = []

        def page(next_: int | None) -> LetterPage:
            return LetterPage([letter_out(x, preview) for x in kept], next_)

        scanned = 0
        while True:
            batch = self._call(read, cursor, limit)
            scanned += len(batch)
            for letter in self._in(batch, districts):
                kept.append(letter)
                if len(kept) == limit:  # the page is full: the next one starts after this letter
                    return page(letter.seq)
            if len(batch) < limit:  # the log ends here
                return page(None)
            cursor = batch[-1].seq
            if scanned >= SCAN_MAX:
                return page(cursor)

    def _in(self, found: list[letters.DeadLetter], districts: frozenset[str] | None) -> list[letters.DeadLetter]:
        """The letters of devices of residents of `districts` (a dispatcher's scope; None: all).
        A device's messages carry its id as the subject's last token; a letter of no known device
        is for the city bureau and admins only."""
        if districts is None or not found:
            return found
        from gateway import interface as registry  # the gateway owns devices

        with self.pool.connection() as conn:
            owners = registry.residents_of_devices(conn, {x.subject.rsplit(".", 1)[-1] for x in found})
            places = residents.districts_of(conn, owners.values())
        return [x for x in found if places.get(owners.get(x.subject.rsplit(".", 1)[-1], ""), None) in districts]

    def replay(self, seq: int, user: User) -> letters.DeadLetter:
        """Back into its stream; its consumer gets it as a new message."""
        letter = self._call(letters.replay, seq)
        self._audit("replayed", letter, user)
        return letter

    def discard(self, seq: int, user: User) -> letters.DeadLetter:
        """Gone for good."""
        letter = self._call(letters.discard, seq)
        self._audit("discarded", letter, user)
        return letter

    def _audit(self, what: str, letter: letters.DeadLetter, user: User) -> None:
        actor = audit.actor_of(user)
        # Done already (the log has no transactions to share): recorded right after it.
        with self.pool.connection() as conn:
            audit.record(conn, actor, f"dead_letter.{what}", f"dead_letter:{letter.seq}",
                         {"consumer": letter.consumer, "subject": letter.subject, "reason": letter.reason})
        log.warning("dead letter %d (%s, from %s) %s by %s", letter.seq, letter.consumer, letter.subject, what,
                    actor, extra={"dead_letter": letter.seq, "consumer": letter.consumer,
                                  "subject": letter.subject, "action": what, "actor": actor})

    def _call(self, fn: Callable[..., T], *args) -> T:
        if not self.log.connected:
            raise LogUnavailable("the internal log is not reachable; try again shortly")
        try:
            return fn(self.log, *args)
        except letters.UnknownDeadLetter as exc:
            raise NotFound(f"{exc}: replayed or discarded already, or never there") from None
        except (TimeoutError, RuntimeError, nats.errors.Error) as exc:
            log.warning("dead letters: the log did not answer: %s", exc)
            raise LogUnavailable("the internal log did not answer; try again shortly") from None


_UNAVAILABLE = {503: {"description": "The internal log is not reachable",
                      "content": {"application/json": {"schema": ERROR}}}}
_UNKNOWN = {404: {"description": "No dead letter with that sequence number (replayed or discarded already)",
                  "content": {"application/json": {"schema": ERROR}}}}
Seq = Annotated[int, Path(ge=1, le=INT64, description="The dead letter's sequence number (`seq`).")]


def dead_letters_router(desk: DeadLetterDesk) -> APIRouter:
    """The API's routes over one desk."""
    router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

    @router.get("", response_model=list[DeadLetterOut], responses={200: {"headers": {NEXT_HEADER: {
        "description": "The `after` of the next page; absent on the last page.", "schema": {"type": "integer"}}}},
        **_UNAVAILABLE})
    def list_dead_letters(
        user: DispatcherUser,
        response: Response,
        after: Annotated[int, Query(ge=0, le=INT64, description=(
            "Only those with a higher seq: the last seq of the previous page."))] = 0,
        limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    ) -> list[DeadLetterOut]:
        """Dead letters, oldest first, a page at a time; dispatchers (of their districts' devices)
        and admins. While more may follow, the answer's `X-Next-After` header holds the `after` of
        the next page. Page on by it, not by the last letter: a district dispatcher's page skips
        other districts' letters, and may hold fewer than `limit`, or none, with more to come."""
        page = desk.oldest(after, limit, districts=user.scope.districts)
        if page.next is not None:
            response.headers[NEXT_HEADER] = str(page.next)
        return page.letters

    @router.post("/{seq}/replay", status_code=204, responses={**_UNKNOWN, **_UNAVAILABLE})
    def replay_dead_letter(seq: Seq, admin: AdminUser) -> Response:
        """Put a dead letter back into the stream it came from (its consumer gets it again as a new
        message) and remove it from the dead letters; admin only."""
        desk.replay(seq, admin)
        return Response(status_code=204)

    @router.delete("/{seq}", status_code=204, responses={**_UNKNOWN, **_UNAVAILABLE})
    def discard_dead_letter(seq: Seq, admin: AdminUser) -> Response:
        """Remove a dead letter for good; admin only."""
        desk.discard(seq, admin)
        return Response(status_code=204)

    return router
