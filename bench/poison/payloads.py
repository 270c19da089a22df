"""Payloads the device contract refuses, of every kind an outside check threw at the edge: deep
nesting, invalid UTF-8, 64 KiB of junk, non-finite numbers, wrong types and values, NUL, not
an object at all. Deterministic: the same list every run."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from homecare.contract import format_ts
from homecare.topics import DeviceChannel


def _ts(offset_s: float = 0.0) -> str:
    return format_ts(datetime.now(UTC) + timedelta(seconds=offset_s))


def _event(**fields) -> bytes:
    body = {"event_id": "e-poison", "ts": _ts(), "type": "button.pressed", "service": "meal"}
    body.update(fields)
    return json.dumps(body).encode()


KINDS = {
    "nested arrays": lambda rng: b"[" * 5000 + b"]" * 5000,
    "nested objects": lambda rng: b'{"a":' * 3000 + b"1" + b"}" * 3000,
    "invalid utf-8": lambda rng: b'{"event_id": "\xff\xfe\xfd", "type": "button.pressed"}',
    "64 KiB junk": lambda rng: rng.randbytes(64 * 1024),
    "NaN": lambda rng: _event().replace(b'"meal"', b'"meal", "x": NaN'),
    "1e400": lambda rng: _event().replace(b'"meal"', b'"meal", "x": 1e400'),
    "lone surrogate": lambda rng: _event(event_id="\ud800").replace(b"\\ud800", b"\\ud800"),
    "NUL in event_id": lambda rng: _event(event_id="a\x00b"),
    "event_id a number": lambda rng: _event(event_id=5),
    "unknown event type": lambda rng: _event(type="button.exploded"),
    "unknown service": lambda rng: _event(service="laundry"),
    "ts a week ahead": lambda rng: _event(ts=_ts(7 * 86_400)),
    "ts a month back": lambda rng: _event(ts=_ts(-30 * 86_400)),
    "10 k character id": lambda rng: _event(event_id="x" * 10_000),
    "not an object": lambda rng: rng.choice([b"[]", b'"x"', b"123", b"null", b"true"]),
    "empty": lambda rng: b"",
    "truncated": lambda rng: _event()[:-7],
}

# A button's four channels: events, and the three where a button's payload is also refused.
CHANNELS = (DeviceChannel.EVENTS, DeviceChannel.STATUS, DeviceChannel.ACKS, DeviceChannel.TELEMETRY)


def poison(count: int, seed: int = 11) -> list[tuple[DeviceChannel, str, bytes]]:
    """`count` (channel, kind, payload), every kind on every channel in turn."""
    rng = random.Random(seed)
    kinds = list(KINDS.items())
    out = []
    for i in range(count):
        name, make = kinds[i % len(kinds)]
        channel = CHANNELS[(i // len(kinds)) % len(CHANNELS)]
        out.append((channel, name, make(rng)))
    return out
