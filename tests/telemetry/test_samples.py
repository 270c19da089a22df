"""Pure parts: parsing internal messages, choosing resolutions, turning falls into requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from homecare.errors import Invalid
from homecare.internal import DeviceEvent
from services.telemetry.domain.falls import open_request_for
from services.telemetry.domain.samples import (
    BadMessage,
    Parsed,
    parse_batches,
    parse_common_form,
    parse_for_copy,
    parse_forwarded,
)
from services.telemetry.queries import choose_resolution, resolve_resolution

from .helpers import message, series

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def test_parse_batches_gives_one_row_per_sample_with_its_device():
    a, b = series(T0, 3, seed=1), series(T0, 2, seed=2)
    rows = parse_batches(message(("bed-a", "res-a", a), ("bed-b", "res-b", b)).dumps())
    assert [(r.device_id, r.resident_id, r.ts) for r in rows] == [
        ("bed-a", "res-a", s.ts) for s in a
    ] + [("bed-b", "res-b", s.ts) for s in b]
    assert rows[0].movement == a[0].movement and rows[0].heart_rate == a[0].heart_rate


def test_parse_batches_normalises_times_to_utc():
    payload = json.dumps({"batches": [{"device_id": "bed-a", "resident_id": "r", "samples": [
        {"ts": "2026-11-29T05:00:00+02:00", "occupied": False, "movement": 0.0},
        {"ts": "2026-11-29T03:00:01", "occupied": False, "movement": 0.0},
    ]}]})
    rows = parse_batches(payload)
    assert rows[0].ts == T0 and rows[0].ts.tzinfo == UTC
    assert rows[1].ts == T0 + timedelta(seconds=1) and rows[1].ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"not json", "not TelemetryBatches"),
        (b'{"batches": [{"device_id": "bed-a"}]}', "batches.0.resident_id"),
        (json.dumps({"batches": [{"device_id": "bed-a", "resident_id": "r", "samples": [
            {"ts": "2026-11-29T03:00:00Z", "occupied": True, "heart_rate": 70000, "movement": 0.1}
        ]}]}), "samples[0].heart_rate"),
        (json.dumps({"batches": [{"device_id": "bed\u0000a", "resident_id": "r", "samples": []}]}),
         "batches[0].device_id"),
        (b'{"batches": [{"device_id": "bed-a", "resident_id": "r", "samples": [{"ts": '
         b'"2026-11-29T03:00:00Z", "occupied": true, "movement": 1e39}]}]}', "movement"),
    ],
)
@pytest.mark.parametrize("parse", [parse_batches, parse_for_copy])
def test_parse_batches_rejects_what_cannot_be_stored(payload, reason, parse):
    with pytest.raises(BadMessage, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse(payload)


def _decoded(parsed: Parsed) -> tuple[list[tuple], set, dict]:
    """The rows, touched minutes and newest sample per bed of Parsed, as values."""
    rows = []
    for line in parsed.lines:
        ts, device, resident, occupied, hr, rr, movement = line.removesuffix("\n").split("\t")
        rows.append((datetime.fromisoformat(ts), device, resident, occupied == "t",
                     None if hr == r"\N" else int(hr), None if rr == r"\N" else int(rr), float(movement)))
    minutes = {(device, datetime.fromisoformat(minute)) for device, minute in parsed.minutes}
    newest: dict[str, datetime] = {}
    for ts, device, *_ in parsed.latest:
        at = datetime.fromisoformat(ts)
        newest[device] = max(newest.get(device, at), at)
    return rows, minutes, newest


def _expected(payload) -> tuple[list[tuple], set, dict]:
    rows = [tuple(r[:6]) + (float(r.movement),) for r in parse_batches(payload)]
    minutes = {(r[1], r[0].replace(second=0, microsecond=0)) for r in rows}
    newest: dict[str, datetime] = {}
    for r in rows:
        newest[r[1]] = max(newest.get(r[1], r[0]), r[0])
    return rows, minutes, newest


def _batch(samples: list[dict], device: str = "bed-a") -> bytes:
    return json.dumps({"batches": [{"device_id": device, "resident_id": "r", "samples": samples}]}).encode()


_COMMON = [
    message(("bed-a", "res-a", series(T0 + timedelta(milliseconds=250), 90, seed=3)),
            ("bed-b", "res-b", series(T0, 3, seed=4))).dumps(),
    # As devices send them (whole seconds), out of order, with ints for movement.
    _batch([{"ts": "2026-11-29T03:00:59Z", "occupied": True, "heart_rate": 61, "respiration_rate": 12,
             "movement": 1},
            {"ts": "2026-11-29T03:01:00Z", "occupied": False, "movement": 0.25, "extra": "ignored"},
            {"ts": "2026-11-29T02:59:00Z", "occupied": True, "heart_rate": 60, "respiration_rate": None,
             "movement": 0.5}]),
]
# Forms only parse_batches decides on: offsets, naive times, times of mixed lengths, a float
# heart rate, a truthy number for occupied.
_OTHER = [
    _batch([{"ts": "2026-11-29T05:00:00+02:00", "occupied": True, "movement": 0.1}]),
    _batch([{"ts": "2026-11-29T03:00:00", "occupied": True, "movement": 0.1}]),
    _batch([{"ts": "2026-11-29T03:00:00Z", "occupied": True, "movement": 0.1},
            {"ts": "2026-11-29T03:00:00.5Z", "occupied": True, "movement": 0.1}]),
    _batch([{"ts": "2026-11-29T03:00:00Z", "occupied": True, "heart_rate": 70.0, "movement": 0.1}]),
    _batch([{"ts": "2026-11-29T03:00:00Z", "occupied": 1, "movement": 0.1}]),
]


@pytest.mark.parametrize("payload", _COMMON + _OTHER)
def test_the_copy_path_gives_what_parse_batches_gives(payload):
    assert _decoded(parse_for_copy(payload)) == _expected(payload)


def test_the_common_form_is_taken_by_the_hot_path_and_nothing_else():
    assert all(parse_common_form(p) is not None for p in _COMMON)
    assert all(parse_common_form(p) is None for p in _OTHER)
    # A day past the month's end, an hour past 23: for parse_batches to refuse.
    for ts in ("2026-02-30T03:00:00Z", "2026-11-29T24:00:00Z"):
        payload = _batch([{"ts": ts, "occupied": True, "movement": 0.1}])
        assert parse_common_form(payload) is None
        with pytest.raises(BadMessage):
            parse_for_copy(payload)


def test_auto_resolution_keeps_charts_under_max_points():
    assert choose_resolution(T0, T0 + timedelta(minutes=30), 5000) == "raw"
    assert choose_resolution(T0, T0 + timedelta(hours=24), 5000) == "1m"
    assert choose_resolution(T0, T0 + timedelta(days=7), 5000) == "1h"
    for span in (timedelta(minutes=83), timedelta(days=3), timedelta(days=30)):
        chosen = choose_resolution(T0, T0 + span, 5000)
        step = {"raw": timedelta(seconds=1), "1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
        assert span / step[chosen] <= 5000


def test_resolve_resolution_refuses_empty_ranges_and_unknown_names():
    with pytest.raises(Invalid, match="end must be after start"):
        resolve_resolution(T0, T0)
    with pytest.raises(Invalid, match="resolution must be one of"):
        resolve_resolution(T0, T0 + timedelta(hours=1), "5m")
    # A naive time is UTC: the same instant as an aware one, so this range is empty.
    with pytest.raises(Invalid):
        resolve_resolution(T0, T0.replace(tzinfo=None))
    assert resolve_resolution(T0, T0 + timedelta(hours=1), "1h") == "1h"


def _fall(confidence: float | None) -> DeviceEvent:
    return DeviceEvent(
        device_id="bed-000123", device_kind="bed", resident_id="res-9", event_id="e-1", ts=T0,
        type="fall.suspected", received_at=T0, confidence=confidence,
    )


def test_a_fall_opens_an_emergency_request_keyed_by_device_and_event():
    request = open_request_for(_fall(0.87))
    assert request is not None
    assert request.source_id == "bed-000123:e-1"
    assert request.service == "emergency" and request.resident_id == "res-9"
    assert request.device_id == "bed-000123" and "0.87" in request.reason


def test_a_fall_below_the_confidence_threshold_opens_nothing():
    assert open_request_for(_fall(0.2), min_confidence=0.5) is None
    assert open_request_for(_fall(0.5), min_confidence=0.5) is not None
    assert open_request_for(_fall(None), min_confidence=0.5) is not None


# -- the gateway's messages, trusted (parse_forwarded) -------------------------------------------


def _gateway_messages() -> list[bytes]:
    """DeviceBatch messages as the gateway writes them into the log: from its fast path (each
    sample as the device sent it) and from the contract's validator (`batch_json`)."""
    from gateway.fastpath import batch_part, fast_samples
    from gateway.forwarder import batch_json
    from gateway.registry import DeviceRef
    from homecare.contract import DeviceKind, validate
    from homecare.topics import DeviceChannel

    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=41, microsecond=0)
    device = [{"ts": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "occupied": i % 4 != 0,
               "heart_rate": 60 + i % 30 if i % 4 else None, "respiration_rate": 12 + i % 9 if i % 4 else None,
               "movement": [0, 1, 0.25, 0.5, 0.0][i % 5]} for i in range(90)]
    fast = json.dumps({"samples": device}).encode()
    samples = fast_samples(fast)
    assert samples is not None
    odd = json.dumps({"samples": [  # the validator's path: offsets, milliseconds, absent rates
        {"ts": (start + timedelta(seconds=0.5 * i)).isoformat(), "occupied": True, "movement": 0.125}
        for i in range(7)]}).encode()
    assert fast_samples(odd) is None
    millis = json.dumps({"samples": [  # the fast path, times with milliseconds
        {**sample, "ts": sample["ts"][:-1] + f".{125 * i:03d}Z"} for i, sample in enumerate(device[:8])]}).encode()
    fast_millis = fast_samples(millis)
    assert fast_millis is not None
    ref = DeviceRef("bed-b", DeviceKind.BED, 'res "b"\\')
    return [batch_part("bed-a", "res-a", samples), batch_json(ref, validate(DeviceChannel.TELEMETRY, odd)),
            batch_part("bed-c\t", "res-c", fast_millis)]


def test_the_gateways_messages_are_read_as_parse_for_copy_reads_them():
    messages = _gateway_messages()
    forwarded = parse_forwarded(messages)
    assert forwarded is not None
    expected = parse_for_copy(b'{"batches":[' + b",".join(messages) + b"]}")
    assert _decoded(forwarded) == _decoded(expected)
    assert len(forwarded) == 105 and len({device for device, _ in forwarded.minutes}) == 3


@pytest.mark.parametrize("message", [
    *[json.loads(p)["batches"][0] for p in _OTHER[:3]],  # offsets, naive times, of two lengths
    {"device_id": "bed-a", "resident_id": "r", "samples": [
        {"ts": "2026-11-29T03:00:00Z", "occupied": True, "heart_rate": None, "respiration_rate": None,
         "movement": 1e-50}]},  # for from_rows, which stores it as 0.0
    {"device_id": "bed-a", "resident_id": "r", "samples": [{"ts": "2026-11-29T03:00:00Z", "occupied": True}]},
    {"device_id": "", "resident_id": "r", "samples": []},
    {"device_id": 5, "resident_id": "r", "samples": []},
    {"batches": []},
    [],
])
def test_what_the_gateway_does_not_write_is_left_to_parse_for_copy(message):
    good = _gateway_messages()[0]
    assert parse_forwarded([good, json.dumps(message).encode()]) is None
    assert parse_forwarded([good, b"not json"]) is None
