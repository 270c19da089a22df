"""Provider presence: is the provider's app still there?

The app sends a heartbeat every half minute or so; any answer or step the provider reports (an
offer accepted or declined, en route, arrived, completed, a position) is a sign of life too, and
so is going on shift. A provider on shift not heard from for the presence time-out is
unreachable: matching passes it over (with a reason the dispatcher sees), an offer already out to
it lapses at once, and the roster says so. Its next sign of life makes it reachable again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

PRESENCE_TIMEOUT = timedelta(minutes=3)


def reachable(last_seen_at: datetime | None, now: datetime, timeout: timedelta = PRESENCE_TIMEOUT) -> bool:
    """Whether a provider last heard from at `last_seen_at` counts as there at `now`. Never heard
    from: not reachable (going on shift stamps a sign of life, so this is only a provider put on
    shift behind the service's back)."""
    return last_seen_at is not None and now - last_seen_at <= timeout


def presence(
    on_shift: bool, last_seen_at: datetime | None, now: datetime, timeout: timedelta = PRESENCE_TIMEOUT
) -> str:
    """`off` (off shift: nobody expects its app), `reachable` or `unreachable`, as the roster shows it."""
    if not on_shift:
        return "off"
    return "reachable" if reachable(last_seen_at, now, timeout) else "unreachable"

