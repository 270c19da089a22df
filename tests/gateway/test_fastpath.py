"""The telemetry hot path against the contract's validator: it may leave a decision to the
validator, but whatever it passes the validator passes too, and forwards the same samples."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from gateway.fastpath import batch_part, fast_samples
from gateway.forwarder import batch_json
from gateway.registry import DeviceRef
from homecare.contract import ContractError, DeviceKind, format_ts, validate
from homecare.internal import DeviceBatch
from homecare.topics import DeviceChannel

REF = DeviceRef("bed-000123", DeviceKind.BED, "res-1")
NOW = datetime.now(UTC)


def _sample(n: int, rng: random.Random) -> dict:
    occupied = rng.random() < 0.8
    return {
        "ts": (NOW - timedelta(hours=2, seconds=-n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "occupied": occupied,
        "heart_rate": rng.randint(20, 250) if occupied else None,
        "respiration_rate": rng.randint(4, 60) if occupied else None,
        "movement": rng.choice([0, 1, 0.0, 1.0, round(rng.random(), 3)]),
    }


def _valid(rng: random.Random, size: int = 10) -> dict:
    return {"samples": [_sample(n, rng) for n in range(size)]}


def _slow(payload: bytes) -> DeviceBatch | None:
    try:
        telemetry = validate(DeviceChannel.TELEMETRY, payload)
    except ContractError:
        return None
    return DeviceBatch.model_validate_json(batch_json(REF, telemetry))


def _fast(payload: bytes) -> DeviceBatch | None:
    samples = fast_samples(payload)
    return None if samples is None else DeviceBatch.model_validate_json(batch_part(REF.id, REF.resident_id, samples))


ODD_VALUES = [
    None, True, False, 0, 1, -1, 19, 20, 250, 251, 3, 4, 60, 61, 0.5, 62.0, 1.0000001, -0.0, 2**70,
    "62", "", "true", [], {}, [62], float("nan"), float("inf"), 1e308,
]
ODD_TS = [
    "2026-11-29T03:00:00", "2026-11-29 03:00:00Z", "2026-11-29T03:00:00+08:00", "20261129T030000Z",
    "2026-02-30T03:00:00Z", "2026-11-29T24:00:00Z", " 2026-11-29T03:00:00Z", "2026-11-29T03:00:00z",
    "2026-11-29T03:00:00.1234567Z", "not a time", 1_700_000_000_000, True, None, 1.5,
]


def _mutate(payload: dict, rng: random.Random) -> bytes:
    samples = payload["samples"]
    sample = rng.choice(samples)
    kind = rng.randrange(10)
    if kind == 0:
        sample[rng.choice(list(sample))] = rng.choice(ODD_VALUES)
    elif kind == 1:
        del sample[rng.choice(list(sample))]
    elif kind == 2:
        sample["ts"] = rng.choice(ODD_TS)
    elif kind == 3:
        sample["ts"] = format_ts(NOW + timedelta(seconds=rng.choice([-8 * 86400, -7 * 86400 + 60, 290, 310, 10**6])))
    elif kind == 4:
        sample["ts"] = rng.choice(samples)["ts"]  # a duplicate, or itself
    elif kind == 5:
        sample["extra"] = rng.choice(ODD_VALUES[:20])
    elif kind == 6:
        payload["samples"] = samples * rng.choice([0, 61])  # none, or 610 samples (duplicates too)
    elif kind == 7:
        payload[rng.choice(["device_id", "resident_id", "samples", "other"])] = rng.choice(ODD_VALUES)
    elif kind == 8:
        return rng.choice([b"[]", b"null", b"{", b'{"samples": [] }', b"\xff\xfe", b'{"samples": NaN}'])
    else:  # the same instant written two ways
        sample["ts"] = sample["ts"].replace("Z", "+00:00") if rng.random() < 0.5 else sample["ts"][:-1] + ".000Z"
    return json.dumps(payload).encode()


def test_canonical_batches_take_the_fast_path_and_forward_the_same_samples():
    rng = random.Random(7)
    for size in (1, 10, 600):
        payload = json.dumps(_valid(rng, size), separators=(",", ":")).encode()  # 600 fit in 64 KiB
        fast = _fast(payload)
        assert fast is not None and fast == _slow(payload)
    # unknown fields are ignored, and not forwarded
    body = _valid(rng, 3)
    body["samples"][0]["firmware_note"] = "x" * 100
    body["battery"] = 0.5
    fast = _fast(json.dumps(body).encode())
    assert fast == _slow(json.dumps(body).encode())
    assert b"firmware_note" not in batch_part(REF.id, REF.resident_id, fast_samples(json.dumps(body).encode()))


def test_the_fast_path_never_passes_what_the_contract_rejects():
    rng = random.Random(11)
    decided = {"fast": 0, "validator accepts": 0, "validator rejects": 0}
    for _ in range(4000):
        payload = _mutate(_valid(rng, rng.choice([1, 3, 20])), rng)
        fast, slow = _fast(payload), _slow(payload)
        if fast is not None:
            decided["fast"] += 1
            assert slow is not None, payload
            assert fast == slow, payload
        else:
            decided["validator accepts" if slow is not None else "validator rejects"] += 1
    # every way through was taken
    assert all(count > 100 for count in decided.values()), decided


@pytest.mark.parametrize("ts", ["2026-11-29T03:00:00+08:00", 1_700_000_000_000])
def test_other_valid_timestamps_go_through_the_validator(ts):
    body = {"samples": [{"ts": ts, "occupied": False, "movement": 0}]}
    assert fast_samples(json.dumps(body).encode()) is None


def test_one_instant_written_in_forms_of_different_lengths_is_a_duplicate():
    base = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    # lengths 22, 20 and 24: their sum is three times the first one's
    stamps = [f"{base}.5Z", f"{base}Z", f"{base}.000Z"]
    body = {"samples": [{"ts": t, "occupied": False, "movement": 0} for t in stamps]}
    payload = json.dumps(body).encode()
    assert _slow(payload) is None  # the contract sees the same second twice
    assert fast_samples(payload) is None
