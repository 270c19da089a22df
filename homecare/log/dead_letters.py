"""The dead-letter stream as an operator sees it: what consumers gave up on and why, and a way to
put a message back on its way once its cause is fixed (or to discard it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import NotFoundError

from .client import Log
from .streams import DEAD


@dataclass(frozen=True)
class DeadLetter:
    seq: int  # in the dead-letter stream: the id an operator replays or discards
    consumer: str
    subject: str  # where it came from, and where a replay puts it again
    reason: str
    deliveries: int
    failed_at: str
    stored_at: datetime | None
    payload: bytes


class UnknownDeadLetter(LookupError):
    """No dead letter with that sequence number (replayed or discarded already)."""


def dead_letters(log_: Log, after_seq: int = 0, limit: int = 100) -> list[DeadLetter]:
    """Dead letters with a sequence above `after_seq`, oldest first, at most `limit`."""
    return log_.call(_list(log_, after_seq, limit), 30)


def latest(log_: Log, before_seq: int | None = None, limit: int = 100) -> list[DeadLetter]:
    """Dead letters with a sequence below `before_seq` (all when None), newest first, at most `limit`."""
    return log_.call(_latest(log_, before_seq, limit), 30)


def replay(log_: Log, seq: int) -> DeadLetter:
    """Put a dead letter back into its stream (its consumer gets it as a new message), then
    remove it from the dead letters. A crash in between leaves it in both: consumers are idempotent."""
    letter = _get(log_, seq)
    log_.publish_wait(letter.subject, letter.payload)
    log_.call(log_.js.delete_msg(log_.stream(DEAD), seq), 10)
    return letter


def discard(log_: Log, seq: int) -> DeadLetter:
    """Remove a dead letter for good."""
    letter = _get(log_, seq)
    log_.call(log_.js.delete_msg(log_.stream(DEAD), seq), 10)
    return letter


def _get(log_: Log, seq: int) -> DeadLetter:
    try:
        msg = log_.call(log_.js.get_msg(log_.stream(DEAD), seq=seq), 10)
    except NotFoundError:
        raise UnknownDeadLetter(f"no dead letter {seq}") from None
    return _letter(msg)


async def _list(log_: Log, after_seq: int, limit: int, until: int | None = None) -> list[DeadLetter]:
    name = log_.stream(DEAD)
    info = await log_.js.stream_info(name)
    found: list[DeadLetter] = []
    seq = max(after_seq + 1, info.state.first_seq, 1)
    last = info.state.last_seq if until is None else min(until, info.state.last_seq)
    while info.state.messages and seq <= last and len(found) < limit:
        try:  # the next one at or after seq: replayed and discarded ones leave gaps
            msg = await log_.js.get_msg(name, seq=seq, subject=log_.subjects.of_stream(DEAD.token), next=True)
        except NotFoundError:
            break
        if msg.seq > last:
            break
        found.append(_letter(msg))
        seq = msg.seq + 1
    return found


async def _latest(log_: Log, before_seq: int | None, limit: int) -> list[DeadLetter]:
    """Read forward (JetStream reads no other way) from a window below the top, widening it until
    it holds `limit` letters or reaches the first: replayed and discarded ones leave gaps."""
    info = await log_.js.stream_info(log_.stream(DEAD))
    first, top = max(info.state.first_seq, 1), info.state.last_seq
    if before_seq is not None:
        top = min(top, before_seq - 1)
    if not info.state.messages or top < first or limit < 1:
        return []
    window = limit
    while True:
        low = max(first, top - window + 1)
        found = await _list(log_, low - 1, top - low + 1, until=top)
        if len(found) >= limit or low == first:
            return found[::-1][:limit]
        window *= 4


def _letter(msg) -> DeadLetter:
    headers = msg.headers or {}
    return DeadLetter(
        seq=msg.seq, consumer=headers.get("Homecare-Consumer", ""), subject=headers.get("Homecare-Subject", ""),
        reason=headers.get("Homecare-Reason", ""), deliveries=int(headers.get("Homecare-Deliveries", "0") or 0),
        failed_at=headers.get("Homecare-Failed-At", ""), stored_at=msg.time, payload=msg.data or b"",
    )
