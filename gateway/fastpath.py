"""The telemetry hot path: a batch in the common, canonical form is checked a field at a time
over the whole batch (set, min and max over each column, in C) and forwarded as parsed, instead
of through the pydantic models and a rebuild of every sample.

It only ever says "valid": whatever it does not recognise at once (a timestamp in milliseconds
or with an offset, a float heart rate, a duplicate, anything out of range or odd) goes to the
contract's own `validate()`, which accepts it or explains the rejection. So the fast path can be
stricter than the contract, never looser (tests/gateway/test_fastpath.py compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import orjson

from homecare.contract import MAX_PAYLOAD_BYTES
from homecare.contract.timestamps import MAX_AGE, MAX_FUTURE
from homecare.contract.validate import MAX_DEPTH, nested_deeper_than

# RFC 3339 in UTC with a Z, the calendar's ranges checked here (a day past the month's end is
# caught by parsing each distinct date): the form the fast path passes on as it came.
_TS = (r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
       r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z")
_ALL_TS = re.compile(rf"(?:{_TS}\n)*{_TS}")
_FIELDS = ("ts", "occupied", "heart_rate", "respiration_rate", "movement")
_FIELD_SET = frozenset(_FIELDS)
_FIELDS_OF = itemgetter(*_FIELDS)
_DAY = itemgetter(slice(0, 10))
_DICT = frozenset({dict})
_BOOL = frozenset({bool})
_OPTIONAL_INT = frozenset({int, type(None)})
_NUMBER = frozenset({int, float})
MAX_SAMPLES = 600


def fast_samples(payload: bytes, now: datetime | None = None) -> list[dict[str, Any]] | None:
    """The samples of a telemetry payload that is certainly valid, each reduced to the contract's
    fields; None when the contract's validator must decide. Never raises: orjson refuses what
    the validator would (NaN, lone surrogates, invalid UTF-8, nesting beyond its limit) with an
    error caught here, and nesting the contract refuses below orjson's limit is handed over."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        data = orjson.loads(payload)  # strict JSON: no NaN, no lone surrogates
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    if len(data) != 1 and nested_deeper_than(data, MAX_DEPTH):  # unknown fields, nested
        return None
    samples = data.get("samples")
    if type(samples) is not list or not 1 <= len(samples) <= MAX_SAMPLES:
        return None
    if _types(samples) != _DICT:
        return None
    # The common case: every sample has exactly the contract's fields (each has all five, and
    # five in all), checked a field at a time over the whole batch: builtins looping in C, not a
    # Python loop per sample.
    try:
        stamps, occupied, heart_rates, respiration_rates, movements = zip(*map(_FIELDS_OF, samples), strict=True)
    except KeyError:
        return _reduced(samples, now)
    if sum(map(len, samples)) != len(_FIELDS) * len(samples):
        return _reduced(samples, now)
    if (
        _types(occupied) <= _BOOL
        and _in_range(heart_rates, 20, 250)
        and _in_range(respiration_rates, 4, 60)
        and _types(movements) <= _NUMBER
        and 0.0 <= min(movements)
        and max(movements) <= 1.0
        and _timestamps_ok(stamps, now)
    ):
        return samples
    return None


def _types(values: Sequence[Any]) -> set[type]:
    return set(map(type, values))


def _in_range(values: Sequence[Any], low: int, high: int) -> bool:
    """Every value an int within [low, high] (low > 0), or None."""
    if not _types(values) <= _OPTIONAL_INT or 0 in values:  # filter(None) below drops 0
        return False
    present = [*filter(None, values)]
    return not present or (low <= min(present) and max(present) <= high)


def _reduced(samples: list[dict[str, Any]], now: datetime | None) -> list[dict[str, Any]] | None:
    """fast_samples for batches whose samples lack a field or carry more: checked one sample at a
    time, each forwarded with the contract's fields only."""
    if not _timestamps_ok([sample.get("ts") for sample in samples], now):
        return None
    out = []
    for sample in samples:
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
        if sample.keys() == _FIELD_SET:
            out.append(sample)
        elif nested_deeper_than(sample, MAX_DEPTH - 2):  # inside the batch and its list
            return None
        else:
            out.append({k: sample.get(k) for k in _FIELDS})
    return out


def _timestamps_ok(stamps: Sequence[Any], now: datetime | None) -> bool:
    """All timestamps canonical, of one length (so equal strings are equal instants and their
    order is time order), unique, real calendar dates, and within the contract's window."""
    try:
        joined = "\n".join(stamps)
    except TypeError:  # one is not a string
        return False
    if len(set(map(len, stamps))) != 1 or _ALL_TS.fullmatch(joined) is None:
        return False
    if len(set(stamps)) != len(stamps):
        return False
    first, last = min(stamps), max(stamps)
    # Strings of one length: when the first and the last share their date, all between do too.
    days = {first[:10]} if first[:10] == last[:10] else set(map(_DAY, stamps))
    try:
        for day in days:
            date.fromisoformat(day)
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    except ValueError:
        return False
    now = now or datetime.now(UTC)
    return now - MAX_AGE <= first and last <= now + MAX_FUTURE


def batch_part(device_id: str, resident_id: str, samples: list[dict[str, Any]]) -> bytes:
    """One DeviceBatch of the coalesced internal message."""
    head = orjson.dumps({"device_id": device_id, "resident_id": resident_id})
    return head[:-1] + b',"samples":' + orjson.dumps(samples) + b"}"
