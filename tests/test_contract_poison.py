"""Payloads no device should send, and some that a broken or hostile one will: the contract's
validator answers every one with a ContractError naming the problem, and raises nothing else.
(A few thousand `[` once made it raise RecursionError, which left the message un-acknowledged.)"""

from __future__ import annotations

import json
import random
import re

import pytest

from gateway.fastpath import fast_samples
from homecare.contract import MAX_PAYLOAD_BYTES, ContractError, validate
from homecare.contract.validate import MAX_DEPTH
from homecare.topics import DeviceChannel as C
from tests.support import now_ts

DEVICE_CHANNELS = [C.STATUS, C.TELEMETRY, C.EVENTS, C.ACKS]
RNG = random.Random(20261129)


def _error(channel: C, payload: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        validate(channel, payload)
    return info.value


def _nested(depth: int) -> bytes:
    """A telemetry batch, valid but for an unknown field nested `depth` deep."""
    sample = {"ts": now_ts(), "occupied": True, "heart_rate": 60, "movement": 0.1}
    body = json.dumps({"samples": [sample], "extra": "X"})
    return body.replace('"X"', "[" * depth + "]" * depth).encode()


DEEP = {
    "10,000 [": b"[" * 10_000,
    "10,000 [ closed": b"[" * 10_000 + b"]" * 10_000,
    "5,000 objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "64 KiB of [": b"[" * MAX_PAYLOAD_BYTES,
    "in a field": _nested(10_000),
    "just too deep for orjson": _nested(1_100),
    "within orjson, beyond the contract": _nested(1_000),
}


@pytest.mark.parametrize("channel", DEVICE_CHANNELS)
@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
def test_deep_nesting_is_a_json_error_saying_so(channel, payload):
    error = _error(channel, payload)
    assert error.code == "json"
    assert error.reason == f"payload: invalid JSON (nested deeper than {MAX_DEPTH} levels)"


def test_nesting_up_to_the_limit_is_fine_in_unknown_fields():
    # the batch is 3 deep itself (object, samples, sample); the extra field adds one per [
    assert validate(C.TELEMETRY, _nested(MAX_DEPTH - 1)).samples
    assert _error(C.TELEMETRY, _nested(MAX_DEPTH)).code == "json"


INVALID_UTF8 = {
    "lone continuation": b'{"online": true, "fw": "\x80"}',
    "overlong": b'{"online": true, "fw": "\xc0\xaf"}',
    "encoded surrogate": b'{"online": true, "fw": "\xed\xa0\x80"}',
    "truncated": b'{"online": true, "fw": "\xe2\x82"}',
    "latin-1": '{"online": true, "fw": "caf\xe9"}'.encode("latin-1"),
    "bytes only": b"\xff\xfe\xfd",
}


@pytest.mark.parametrize("channel", DEVICE_CHANNELS)
@pytest.mark.parametrize("payload", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_is_refused_as_not_utf8(channel, payload):
    error = _error(channel, payload)
    assert error.code == "encoding"
    assert error.reason.startswith("payload: not UTF-8 (byte ")


def _junk(n: int) -> list[bytes]:
    return [
        RNG.randbytes(MAX_PAYLOAD_BYTES),
        bytes(RNG.choice(b'[]{}",:0123456789.eE-+tfnul \\/') for _ in range(MAX_PAYLOAD_BYTES)),
        bytes(RNG.randrange(32, 127) for _ in range(MAX_PAYLOAD_BYTES)),
        "".join(chr(RNG.randrange(0x20, 0xD7FF)) for _ in range(MAX_PAYLOAD_BYTES // 3)).encode(),
        b"\x00" * MAX_PAYLOAD_BYTES,
        b"{" + b'"a":1,' * (MAX_PAYLOAD_BYTES // 6 - 1) + b'"b":2}',
    ][:n]


@pytest.mark.parametrize("channel", DEVICE_CHANNELS)
def test_64_kib_of_junk_is_refused_with_a_reason(channel):
    for payload in _junk(6):
        assert len(payload) <= MAX_PAYLOAD_BYTES
        try:
            validate(channel, payload)
        except ContractError as error:
            assert error.code in {"json", "encoding", "schema", "timestamp"}
            assert re.match(r"^[a-z_]+: \S", error.reason), error.reason  # names the field
        assert fast_samples(payload) is None


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        (b'{"online": true, "battery": NaN}', "NaN and Infinity are not JSON numbers"),
        (b'{"online": true, "battery": Infinity}', "NaN and Infinity are not JSON numbers"),
        (b'{"online": true, "rssi": -Infinity}', "NaN and Infinity are not JSON numbers"),
        (b'{"online": true, "unknown": NaN}', "NaN and Infinity are not JSON numbers"),
        (b'{"online": true, "battery": 1e400}', "number is infinity"),
        (b'{"online": true, "fw": "\\ud800"}', "surrogate"),
        (b'{"online": true, "fw": "\\udc00x"}', "surrogate"),
        (b'{"online": true, "fw": "a\x00b"}', "control character"),
        (b'\xef\xbb\xbf{"online": true}', "invalid JSON"),
        (b"", "invalid JSON"),
        (b"null", "must be a JSON object"),
        (b'"online"', "must be a JSON object"),
        (b"[{}]", "must be a JSON object"),
        (b'{"online": true} {"online": false}', "invalid JSON"),
    ],
)
def test_what_strict_json_refuses_is_a_json_error(payload, said):
    error = _error(C.STATUS, payload)
    assert error.code == "json" and said in error.reason
    assert error.reason.startswith("payload: ")


@pytest.mark.parametrize(
    ("channel", "payload", "reason"),
    [
        (C.EVENTS, {"event_id": "a\x00b", "ts": now_ts(), "type": "bed.exit"}, "event_id: must not contain NUL"),
        (C.ACKS, {"command_id": "\x00", "ts": now_ts()}, "command_id: must not contain NUL"),
        (C.STATUS, {"online": True, "fw": "1.0\x00"}, "fw: must not contain NUL"),
    ],
)
def test_nul_in_a_string_the_platform_keeps_is_refused_naming_the_field(channel, payload, reason):
    error = _error(channel, json.dumps(payload).encode())
    assert (error.code, error.reason) == ("schema", f"{reason} (\\u0000)")


def test_nul_in_an_unknown_field_is_ignored_like_the_field():
    assert validate(C.STATUS, json.dumps({"online": True, "note": "\x00"}).encode()).online


def test_numbers_beyond_64_bits_are_wrong_values_not_crashes():
    assert "heart_rate" in _error(C.TELEMETRY, json.dumps({"samples": [
        {"ts": now_ts(), "occupied": True, "heart_rate": 10**30, "movement": 0.1}]}).encode()).reason
    assert _error(C.ACKS, json.dumps({"command_id": "c", "ts": 10**40}).encode()).code == "timestamp"


def test_oversize_is_refused_before_parsing():
    error = _error(C.EVENTS, b"[" * (MAX_PAYLOAD_BYTES + 1))
    assert error.code == "size"
    assert error.reason == f"payload: {MAX_PAYLOAD_BYTES + 1} bytes exceeds {MAX_PAYLOAD_BYTES}"


def test_the_fast_path_hands_deep_telemetry_to_the_validator():
    assert fast_samples(_nested(MAX_DEPTH - 1)) is not None
    for payload in (_nested(MAX_DEPTH), _nested(1_000), b"[" * 10_000):
        assert fast_samples(payload) is None
    sample = {"ts": now_ts(), "occupied": True, "movement": 0.1, "x": json.loads("[" * 40 + "]" * 40)}
    assert fast_samples(json.dumps({"samples": [sample]}).encode()) is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"event_id": "e", "ts": now_ts(), "type": {"{x}": 4}}, "type: unknown event type {'{x}': 4}"),
        ({"event_id": "e", "ts": now_ts(), "type": "{0}"}, "type: unknown event type '{0}'"),
        ({"event_id": "e", "ts": now_ts(), "type": "x" * 10_000}, "type: unknown event type 'xxx"),
    ],
)
def test_a_reason_quoting_the_devices_input_is_never_formatted_and_stays_short(payload, reason):
    error = _error(C.EVENTS, json.dumps(payload).encode())
    assert error.code == "schema" and error.reason.startswith(reason) and len(error.reason) <= 300
