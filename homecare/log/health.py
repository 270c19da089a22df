"""How far behind each durable consumer of the log is, read from the server: messages not yet
delivered (lag), delivered and not acknowledged, and the age of the oldest one not acknowledged.

One computation for everyone who asks: the consumer runtime (its metrics and readiness, per
replica) and the console (one view of every consumer, however many replicas pull from it).

A consumer's stuck limit travels with it on the server, in its description (`... [stuck after
60 s]`): nats-server keeps a consumer's metadata only from 2.10 on, its description always, and
`nats consumer info` shows it to an operator as well."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from .client import Log
from .streams import ALL

STUCK_AFTER_S = 60.0  # a consumer's limit unless its spec says otherwise
_LIMIT = re.compile(r"\s*\[stuck after (\d+(?:\.\d+)?) s\]$")


def describe(title: str, stuck_after_s: float) -> str:
    """A consumer's description on the server: what it carries, and its stuck limit."""
    return f"{title} [stuck after {stuck_after_s:g} s]"


def read_description(description: str | None) -> tuple[str, float | None]:
    """(title, stuck limit) of a description `describe` wrote; the limit None when there is none."""
    text = description or ""
    match = _LIMIT.search(text)
    if match is None:
        return text.strip(), None
    limit = float(match.group(1))
    return text[: match.start()].strip(), limit if math.isfinite(limit) else None


async def oldest_unacked_age(js: JetStreamContext, stream: str, info: api.ConsumerInfo,
                             now: datetime | None = None) -> float:
    """Seconds since the oldest message the consumer has not acknowledged was stored; 0 when none.

    That message is the first of the consumer's subjects above its ack floor (below the floor
    every message is acknowledged). It is found with `next`, so a gap above the floor (a message
    deleted, or expired by age) does not hide the ones behind it."""
    if not (info.num_pending or info.num_ack_pending):
        return 0.0
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    try:
        oldest = await js.get_msg(stream, seq=floor + 1, subject=info.config.filter_subject or ">", next=True)
    except NotFoundError:
        return 0.0
    if oldest is None or oldest.time is None:
        return 0.0
    return max(0.0, ((now or datetime.now(UTC)) - oldest.time).total_seconds())


@dataclass(frozen=True)
class ConsumerState:
    """One durable consumer as the server sees it, at `checked_at`."""

    consumer: str  # the durable as services name it (metrics, dead letters): no namespace prefix
    stream: str
    title: str  # what it carries, for people ("Button presses"); the consumer's name when unset
    lag: int  # in the stream, not yet delivered
    ack_pending: int  # delivered, not yet acknowledged
    oldest_unacked_s: float
    stuck_after_s: float
    checked_at: datetime

    @property
    def stuck(self) -> bool:
        """Its oldest unacknowledged message is older than its limit: what it carries is delayed."""
        return self.oldest_unacked_s > self.stuck_after_s

    @property
    def stuck_since(self) -> datetime | None:
        """When the oldest waiting message passed the limit (None while it has not)."""
        if not self.stuck:
            return None
        return self.checked_at - timedelta(seconds=self.oldest_unacked_s - self.stuck_after_s)


async def consumer_states(log_: Log, default_limit: float = STUCK_AFTER_S) -> list[ConsumerState]:
    """Every durable consumer of this deployment's streams, by stream and name (ephemeral
    consumers, a test's or a benchmark's observers, are left out)."""
    prefix = f"{log_.namespace.lower()}-"
    found: list[ConsumerState] = []
    for spec in ALL:
        stream = log_.stream(spec)
        try:
            infos = await log_.js.consumers_info(stream)
        except NotFoundError:  # not made yet
            continue
        for info in sorted(infos, key=lambda i: i.name or ""):
            if not info.config.durable_name:
                continue
            name = info.name.removeprefix(prefix)
            title, limit = read_description(info.config.description)
            now = datetime.now(UTC)
            age = await oldest_unacked_age(log_.js, stream, info, now)
            found.append(ConsumerState(
                consumer=name, stream=spec.name, title=title or name, lag=info.num_pending or 0,
                ack_pending=info.num_ack_pending or 0, oldest_unacked_s=age,
                stuck_after_s=default_limit if limit is None else limit, checked_at=now,
            ))
    return found
