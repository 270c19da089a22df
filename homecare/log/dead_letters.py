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


async def _list(log_: Log, after_seq: int, limit: int) -> list[DeadLetter]:
    name = log_.stream(DEAD)
    info = await log_.js.stream_info(name)
    found: list[DeadLetter] = []
    seq = max(after_seq + 1, info.state.first_seq, 1)
    while info.state.messages and seq <= info.state.last_seq and len(found) < limit:
        try:  # the next one at or after seq: replayed and discarded ones leave gaps
            msg = await log_.js.get_msg(name, seq=seq, subject=log_.subjects.of_stream(DEAD.token), next=True)
        except NotFoundError:
            break
        found.append(_letter(msg))
        seq = msg.seq + 1
    return found


def _letter(msg) -> DeadLetter:
    headers = msg.headers or {}
    return DeadLetter(
        seq=msg.seq, consumer=headers.get("Homecare-Consumer", ""), subject=headers.get("Homecare-Subject", ""),
        reason=headers.get("Homecare-Reason", ""), deliveries=int(headers.get("Homecare-Deliveries", "0") or 0),
        failed_at=headers.get("Homecare-Failed-At", ""), stored_at=msg.time, payload=msg.data or b"",
    )
