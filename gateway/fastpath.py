"""The telemetry hot path: a batch in the common, canonical form is checked by a plain loop and
forwarded as parsed, instead of through the pydantic models and a rebuild of every sample.

It only ever says "valid": whatever it does not recognise at once (a timestamp in milliseconds
or with an offset, a float heart rate, a duplicate, anything out of range or odd) goes to the
contract's own `validate()`, which accepts it or explains the rejection. So the fast path can be
stricter than the contract, never looser (tests/gateway/test_fastpath.py compares the two).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from homecare.contract import MAX_PAYLOAD_BYTES
from homecare.contract.timestamps import MAX_AGE, MAX_FUTURE

# RFC 3339 in UTC as every parser reads it: the form the fast path passes on untouched.
_CANONICAL_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")
_FIELDS = ("ts", "occupied", "heart_rate", "respiration_rate", "movement")
_FIELD_SET = frozenset(_FIELDS)
MAX_SAMPLES = 600


def fast_samples(payload: bytes, now: datetime | None = None) -> list[dict[str, Any]] | None:
    """The samples of a telemetry payload that is certainly valid, each reduced to the contract's
    fields; None when the contract's validator must decide."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        data = orjson.loads(payload)  # strict JSON: no NaN, no lone surrogates
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    samples = data.get("samples")
    if type(samples) is not list or not 1 <= len(samples) <= MAX_SAMPLES:
        return None
    now = now or datetime.now(UTC)
    earliest, latest = now - MAX_AGE, now + MAX_FUTURE
    seen: set[datetime] = set()
    out = []
    match = _CANONICAL_TS.fullmatch
    for sample in samples:
        if type(sample) is not dict:
            return None
        ts = sample.get("ts")
        if type(ts) is not str or match(ts) is None:
            return None
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            return None
        if not earliest <= moment <= latest or moment in seen:
            return None
        seen.add(moment)
        if type(sample.get("occupied")) is not bool:
            return None
        heart_rate = sample.get("heart_rate")
        if heart_rate is not None and (type(heart_rate) is not int or not 20 <= heart_rate <= 250):
            return None
        respiration_rate = sample.get("respiration_rate")
        if respiration_rate is not None and (
            type(respiration_rate) is not int or not 4 <= respiration_rate <= 60
        ):
            return None
        movement = sample.get("movement")
        if type(movement) not in (float, int) or not 0.0 <= movement <= 1.0:
            return None
        out.append(sample if sample.keys() == _FIELD_SET else {k: sample.get(k) for k in _FIELDS})
    return out


def batch_part(device_id: str, resident_id: str, samples: list[dict[str, Any]]) -> bytes:
    """One DeviceBatch of the coalesced internal message."""
    head = orjson.dumps({"device_id": device_id, "resident_id": resident_id})
    return head[:-1] + b',"samples":' + orjson.dumps(samples) + b"}"
