"""Pure parts: parsing internal messages, choosing resolutions, turning falls into requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from homecare.errors import Invalid
from homecare.internal import DeviceEvent
from services.telemetry.falls import open_request_for
from services.telemetry.queries import choose_resolution, resolve_resolution
from services.telemetry.samples import BadMessage, parse_batches

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
def test_parse_batches_rejects_what_cannot_be_stored(payload, reason):
    with pytest.raises(BadMessage, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_batches(payload)


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
