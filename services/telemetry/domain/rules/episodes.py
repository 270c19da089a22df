"""Episodes: the same condition seen again in a later, overlapping look is not a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Episode:
    """The latest stretch of a condition on one subject (a device) that raised a finding."""

    started_at: datetime
    last_seen_at: datetime


def continues(previous: Episode | None, start: datetime, end: datetime, gap: timedelta) -> bool:
    """Whether a stretch [start, end] belongs to the previous episode (overlaps it or follows
    it within gap)."""
    if previous is None:
        return False
    return start <= previous.last_seen_at + gap and end >= previous.started_at - gap


def merge(previous: Episode | None, start: datetime, end: datetime, gap: timedelta) -> Episode:
    """The episode after seeing [start, end]: the previous one extended, or a new one."""
    if continues(previous, start, end, gap):
        assert previous is not None
        return Episode(min(previous.started_at, start), max(previous.last_seen_at, end))
    return Episode(start, end)
