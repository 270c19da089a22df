"""Bed samples as ingest stores them: parsed from an internal message into database rows."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from homecare.internal import TelemetryBatches

COLUMNS = ("ts", "device_id", "resident_id", "occupied", "heart_rate", "respiration_rate", "movement")
_SMALLINT = (-32768, 32767)
_REAL_MAX = 3.4e38
# The smallest normal `real` (FLT_MIN). PostgreSQL refuses a non-zero value that would round to
# zero as a `real` (1e-50 is "out of range"), yet the contract allows it: movement is 0.0-1.0.
# Such a movement is stored as 0.0; no reader of it could tell the difference.
_REAL_MIN = 1.1754943508222875e-38


class BadMessage(ValueError):
    """A message that can never be stored: not TelemetryBatches, or values no column can hold."""


class SampleRow(NamedTuple):
    """One row of telemetry.bed_samples, in COLUMNS order."""

    ts: datetime
    device_id: str
    resident_id: str
    occupied: bool
    heart_rate: int | None
    respiration_rate: int | None
    movement: float


def parse_batches(payload: bytes | str) -> list[SampleRow]:
    """The rows of a TelemetryBatches message, or BadMessage saying what is wrong."""
    try:
        message = TelemetryBatches.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"not TelemetryBatches: {where}: {first['msg']}") from None
    rows: list[SampleRow] = []
    for b, batch in enumerate(message.batches):
        for name in ("device_id", "resident_id"):
            value = getattr(batch, name)
            if not value or "\x00" in value:  # PostgreSQL text cannot hold NUL
                raise BadMessage(f"batches[{b}].{name}: must be a non-empty string without NUL")
        for s, sample in enumerate(batch.samples):
            where = f"batches[{b}].samples[{s}]"
            for name in ("heart_rate", "respiration_rate"):
                value = getattr(sample, name)
                if value is not None and not _SMALLINT[0] <= value <= _SMALLINT[1]:
                    raise BadMessage(f"{where}.{name}: {value} does not fit a smallint")
            if not math.isfinite(sample.movement) or abs(sample.movement) > _REAL_MAX:
                raise BadMessage(f"{where}.movement: {sample.movement} is not a finite real")
            rows.append(
                SampleRow(
                    _utc(sample.ts), batch.device_id, batch.resident_id, sample.occupied,
                    sample.heart_rate, sample.respiration_rate, sample.movement,
                )
            )
    return rows


def storable_real(value: float) -> float:
    """`value` as a `real` column takes it: magnitudes below the smallest normal become 0.0."""
    if value and -_REAL_MIN < value < _REAL_MIN:
        return 0.0
    return value


def _utc(ts: datetime) -> datetime:
    # The gateway sends UTC; a naive time is taken as UTC rather than the session's time zone.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# -- the ingest hot path -------------------------------------------------------------------------
# The gateway forwards timestamps as devices sent them in the common form (RFC 3339, UTC, "Z",
# all of one length within a bed's batch, so string order is time order), or writes them in it.
# Its messages are read by `parse_forwarded`, which trusts the values the gateway checked;
# `parse_for_copy` reads any message: in the common form it checks every value on the way into
# COPY text (`parse_common_form`), anything else goes through `parse_batches` (pydantic), which
# accepts it in another form or says why it cannot be stored. So the fast paths may be stricter
# than `parse_batches`, never looser (tests/telemetry/test_samples.py compares them).

_TS = (r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
       r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z")
_ALL_TS = re.compile(rf"(?:{_TS}\n)*{_TS}")
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
_BOOL_TEXT = {True: "t", False: "f"}
_TS_OF = itemgetter("ts")
_MOVEMENT_OF = itemgetter("movement")
_MINUTE_OF = itemgetter(slice(0, 16))


@dataclass
class Parsed:
    """Samples ready for `store.write_parsed`: COPY text lines (COLUMNS order), the (bed, minute)
    pairs they touch, and each bed batch's newest sample (a candidate for `latest_samples`)."""

    lines: list[str] = field(default_factory=list)
    minutes: set[tuple[str, str]] = field(default_factory=set)
    latest: list[tuple[Any, ...]] = field(default_factory=list)  # SampleRow-shaped, ts as text

    def __len__(self) -> int:
        return len(self.lines)

    def extend(self, other: Parsed) -> None:
        self.lines += other.lines
        self.minutes |= other.minutes
        self.latest += other.latest


def parse_for_copy(payload: bytes | str) -> Parsed:
    """The samples of a TelemetryBatches message, ready to store; BadMessage as
    `parse_batches` says it."""
    common = parse_common_form(payload)
    return common if common is not None else from_rows(parse_batches(payload))


def parse_forwarded(payloads: Iterable[bytes]) -> Parsed | None:
    """Parsed from the gateway's messages (each a DeviceBatch), or None when one is not in the
    form the gateway writes (then `parse_for_copy` decides, and says what is wrong).

    The log is internal and its telemetry comes from the gateway, which checked every sample
    against the contract: the values are not checked again one by one, only what the rows,
    minutes and newest samples are derived from (each batch's ids, its timestamps in the common
    form and of one length, no movement below the smallest `real`). A value the database then
    refuses (a bug, or a producer other than the gateway) fails the write, and ingest gives the
    batch to `parse_for_copy`. The rows are the ones `parse_for_copy` gives for the same
    messages (tests/telemetry/test_samples.py)."""
    out = Parsed()
    lines, minutes, latest = out.lines, out.minutes, out.latest
    try:
        for payload in payloads:
            batch = orjson.loads(payload)
            device_id, resident_id, samples = batch["device_id"], batch["resident_id"], batch["samples"]
            if type(device_id) is not str or type(resident_id) is not str or type(samples) is not list:
                return None
            if not device_id or not resident_id:
                return None
            if not samples:
                continue
            stamps = list(map(_TS_OF, samples))
            if len(set(map(len, stamps))) != 1 or _ALL_TS.fullmatch("\n".join(stamps)) is None:
                return None
            if min(map(abs, filter(None, map(_MOVEMENT_OF, samples))), default=1.0) < _REAL_MIN:
                return None  # for from_rows, which stores it as 0.0
            head = f"\t{_copy_text(device_id)}\t{_copy_text(resident_id)}\t"
            for s in samples:
                hr, rr = s["heart_rate"], s["respiration_rate"]
                lines.append(f"{s['ts']}{head}{_BOOL_TEXT[s['occupied']]}\t{_NULL if hr is None else hr}"
                             f"\t{_NULL if rr is None else rr}\t{s['movement']!r}\n")
            minutes.update((device_id, minute + ":00+00:00") for minute in set(map(_MINUTE_OF, stamps)))
            newest = samples[stamps.index(max(stamps))]
            latest.append((newest["ts"], device_id, resident_id, newest["occupied"], newest["heart_rate"],
                           newest["respiration_rate"], newest["movement"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return out


def from_rows(rows: list[SampleRow]) -> Parsed:
    """Parsed from SampleRows (times aware)."""
    out = Parsed()
    newest: dict[str, SampleRow] = {}
    for row in rows:
        row = row._replace(movement=storable_real(float(row.movement)))
        ts = row.ts.astimezone(UTC)
        text = ts.isoformat()
        out.lines.append("\t".join((
            text, _copy_text(row.device_id), _copy_text(row.resident_id), "t" if row.occupied else "f",
            _NULL if row.heart_rate is None else str(row.heart_rate),
            _NULL if row.respiration_rate is None else str(row.respiration_rate), repr(row.movement),
        )) + "\n")
        out.minutes.add((row.device_id, ts.replace(second=0, microsecond=0).isoformat()))
        if row.device_id not in newest or row.ts > newest[row.device_id].ts:
            newest[row.device_id] = row
    out.latest = [(r.ts.astimezone(UTC).isoformat(), *r[1:]) for r in newest.values()]
    return out


def parse_common_form(payload: bytes | str) -> Parsed | None:
    """Parsed when every part of the message is in the common form; None when `parse_batches`
    must decide."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    batches = data.get("batches") if type(data) is dict else None
    if type(batches) is not list:
        return None
    out = Parsed()
    lines, minutes, latest = out.lines, out.minutes, out.latest
    for batch in batches:
        if type(batch) is not dict:
            return None
        device_id, resident_id, samples = batch.get("device_id"), batch.get("resident_id"), batch.get("samples")
        if type(device_id) is not str or type(resident_id) is not str or type(samples) is not list:
            return None
        if not device_id or not resident_id or "\x00" in device_id or "\x00" in resident_id:
            return None
        if not samples:
            continue
        if not all(type(s) is dict for s in samples):
            return None
        stamps = [s.get("ts") for s in samples]
        try:
            joined = "\n".join(stamps)
        except TypeError:
            return None
        if len(set(map(len, stamps))) != 1 or _ALL_TS.fullmatch(joined) is None:
            return None
        try:  # a day past the month's end
            for day in {stamp[:10] for stamp in stamps}:
                date.fromisoformat(day)
        except ValueError:
            return None
        head = f"\t{_copy_text(device_id)}\t{_copy_text(resident_id)}\t"
        for s in samples:
            occupied, hr, rr, mv = s.get("occupied"), s.get("heart_rate"), s.get("respiration_rate"), s.get("movement")
            if type(occupied) is not bool:
                return None
            if hr is None:
                hr = _NULL
            elif type(hr) is not int or not -32768 <= hr <= 32767:
                return None
            if rr is None:
                rr = _NULL
            elif type(rr) is not int or not -32768 <= rr <= 32767:
                return None
            if type(mv) is not float and type(mv) is not int or not -_REAL_MAX <= mv <= _REAL_MAX:
                return None
            if mv and -_REAL_MIN < mv < _REAL_MIN:
                return None  # for from_rows, which stores it as 0.0
            lines.append(f"{s['ts']}{head}{'t' if occupied else 'f'}\t{hr}\t{rr}\t{mv!r}\n")
        for stamp in {stamp[:16] for stamp in stamps}:
            minutes.add((device_id, stamp + ":00+00:00"))
        newest = samples[max(range(len(stamps)), key=stamps.__getitem__)]
        latest.append((newest["ts"], device_id, resident_id, newest["occupied"], newest.get("heart_rate"),
                       newest.get("respiration_rate"), newest["movement"]))
    return out


def _copy_text(value: str) -> str:
    """A value escaped for COPY's text format (names seldom need it)."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
