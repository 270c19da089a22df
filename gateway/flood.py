"""Flood control: a token bucket per device, checked on the MQTT network thread before a message
costs the worker anything, so one stuck or hostile device cannot starve the others.

Over its budget a device's messages are dropped (acknowledged, counted, and the device told on
`errors`, at most once per `reply_every_s`), except those that still carry news:

- an event of a (type, service) not passed in the last `event_repeat_s`: a stuck button repeats
  one press, and repeats add nothing (dispatch records one open request per service), but a
  first press, say an emergency from a button that is also stuck on `meal`, is never dropped;
- a status that changes `online` (a connect, or the last will);
- telemetry whose first sample is older than `backlog_s`: that is a backlog the broker kept
  while the gateway was away, arriving at once; it is validated like any other and is bounded
  by the 7-day window and by (device, ts) idempotence downstream.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import orjson

from homecare.contract import EVENTS_BY_KIND, MAX_PAYLOAD_BYTES, DeviceKind
from homecare.topics import DeviceChannel

_KNOWN_EVENTS = frozenset(t for kind in DeviceKind for t in EVENTS_BY_KIND[kind])
# The first sample's timestamp, either form, without parsing a payload of up to 64 KiB.
_FIRST_TS = re.compile(rb'"ts"\s*:\s*(?:"([^"]{10,40})"|(\d{10,16}))')
MAX_DEVICES = 200_000
# The key of every event payload the gate cannot read (not JSON, too big, no known type): one
# key for all of them, and never news, so over budget they are repeats and dropped. The worker
# rejects them with the validator's reason when they pass within budget.
UNREADABLE: tuple[str, str | None] = ("", None)


class Verdict(Enum):
    PASS = "pass"  # within budget
    NEWS = "news"  # over budget, but carries news (see the module docstring)
    DROP = "drop"  # over budget


@dataclass
class _Device:
    tokens: float
    stamp: float
    dropped: int = 0  # since the last reply
    replied: float = -1e9
    online: bool | None = None
    events: dict[tuple[str, str | None], float] | None = None


class FloodGate:
    """Per-device budgets; used from the network thread only (no locking)."""

    def __init__(
        self, rate_per_s: float, burst: int, event_repeat_s: float = 60.0,
        reply_every_s: float = 5.0, backlog_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = rate_per_s
        self.burst = float(burst)
        self.event_repeat_s = event_repeat_s
        self.reply_every_s = reply_every_s
        self.backlog_s = backlog_s
        self._clock = clock
        self._devices: dict[str, _Device] = {}
        self._lock = threading.Lock()  # the edge's lanes call from their own network threads

    def admit(self, device_id: str, channel: DeviceChannel, payload: bytes) -> Verdict:
        """Take a token for one message, or judge whether an over-budget one carries news."""
        with self._lock:
            return self._admit(device_id, channel, payload)

    def _admit(self, device_id: str, channel: DeviceChannel, payload: bytes) -> Verdict:
        now = self._clock()
        device = self._devices.get(device_id)
        if device is None:
            if len(self._devices) >= MAX_DEVICES:
                self._prune(now)
            device = self._devices[device_id] = _Device(self.burst, now)
        device.tokens = min(self.burst, device.tokens + (now - device.stamp) * self.rate)
        device.stamp = now
        within = device.tokens >= 1.0
        if within:
            device.tokens -= 1.0
        news = self._news(device, channel, payload, now, record=within)
        if within:
            return Verdict.PASS
        if news:
            return Verdict.NEWS
        device.dropped += 1
        return Verdict.DROP

    def reply_due(self, device_id: str) -> int | None:
        """After a drop: how many were dropped since the last reply, when a reply is due."""
        with self._lock:
            device = self._devices.get(device_id)
            now = self._clock()
            if device is None or now - device.replied < self.reply_every_s:
                return None
            device.replied, dropped, device.dropped = now, device.dropped, 0
            return dropped

    def _news(self, device: _Device, channel: DeviceChannel, payload: bytes, now: float,
              record: bool) -> bool:
        """Whether the message carries news; `record`: it passes anyway, remember what it says."""
        if channel is DeviceChannel.EVENTS:
            key = _event_key(payload)
            if key is UNREADABLE:
                return False
            seen = device.events if device.events is not None else {}
            fresh = now - seen.get(key, -1e9) >= self.event_repeat_s
            if fresh or record:
                seen[key] = now
                device.events = seen if len(seen) <= 64 else {key: now}
            return fresh
        if channel is DeviceChannel.STATUS:
            online = _online(payload)
            changed = online is not None and online != device.online
            if online is not None and (changed or record):
                device.online = online
            return changed
        if channel is DeviceChannel.TELEMETRY and not record:
            return _first_sample_age(payload) > self.backlog_s
        return False

    def _prune(self, now: float) -> None:
        # Devices whose bucket has refilled are indistinguishable from new ones.
        self._devices = {
            k: d for k, d in self._devices.items()
            if d.tokens + (now - d.stamp) * self.rate < self.burst
        }
        if len(self._devices) >= MAX_DEVICES:
            self._devices.clear()


def _parse(payload: bytes) -> object:
    """A payload parsed on the network thread, or None: bounded (the contract's size, orjson's
    depth limit, no Python recursion) and it raises nothing whatever the bytes."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _event_key(payload: bytes) -> tuple[str, str | None]:
    """(type, service) of an event, or UNREADABLE; never raises."""
    body = _parse(payload)
    if type(body) is not dict:
        return UNREADABLE
    kind, service = body.get("type"), body.get("service")
    if type(kind) is not str or kind not in _KNOWN_EVENTS:  # a list or object is not hashable
        return UNREADABLE
    if not (service is None or type(service) is str) or (service and len(service) > 32):
        return UNREADABLE
    return kind, service


def _online(payload: bytes) -> bool | None:
    body = _parse(payload)
    online = body.get("online") if type(body) is dict else None
    return online if type(online) is bool else None


def _first_sample_age(payload: bytes) -> float:
    """Seconds since the first sample's ts (0 when none is found or it cannot be read)."""
    match = _FIRST_TS.search(payload, 0, 4096)
    if match is None:
        return 0.0
    try:
        if match.group(2):
            ts = int(match.group(2)) / 1000
        else:
            ts = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        return 0.0
    return datetime.now(UTC).timestamp() - ts
