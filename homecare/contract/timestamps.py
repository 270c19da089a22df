"""Contract timestamps: RFC 3339 in UTC or integer milliseconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=7)


def parse_ts(value: object) -> datetime:
    """Parse a contract timestamp into an aware UTC datetime, or raise ValueError saying why."""
    if isinstance(value, bool):  # bool is an int in Python; never a timestamp
        raise ValueError("must be an RFC 3339 string or integer milliseconds")
    if isinstance(value, int):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("milliseconds out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be an RFC 3339 timestamp like 2026-11-29T03:00:00Z") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("must carry a UTC offset (Z)")
        return parsed.astimezone(UTC)
    raise ValueError("must be an RFC 3339 string or integer milliseconds")


def check_window(ts: datetime, now: datetime | None = None) -> None:
    """Raise ValueError when `ts` is more than 5 minutes ahead or more than 7 days old."""
    now = now or datetime.now(UTC)
    if ts > now + MAX_FUTURE:
        raise ValueError("is more than 5 minutes in the future")
    if ts < now - MAX_AGE:
        raise ValueError("is older than 7 days")


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
