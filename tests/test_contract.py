"""The mqtt-v1 contract: what is accepted, and that every rejection names its field."""
# ruff: noqa: E501  (the table of cases reads best one case per line)

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from homecare.contract import ContractError, format_ts, validate
from homecare.contract.schema import json_schemas
from homecare.topics import DeviceChannel as C

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def ts(offset_s: float = 0) -> str:
    return format_ts(NOW + timedelta(seconds=offset_s))


def check(channel, payload) -> object:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return validate(channel, data, now=NOW)


def reason(channel, payload) -> str:
    with pytest.raises(ContractError) as info:
        check(channel, payload)
    return info.value.reason


def sample(**over):
    base = {"ts": ts(), "occupied": True, "heart_rate": 62, "respiration_rate": 14, "movement": 0.05}
    return {**base, **over}


def test_contract_examples_are_accepted():
    assert check(C.STATUS, {"online": True, "fw": "1.4.2", "battery": 0.93, "rssi": -61}).online
    batch = check(C.TELEMETRY, {"samples": [
        sample(), sample(ts=ts(1), occupied=False, heart_rate=None, respiration_rate=None, movement=0.0),
    ]})
    assert [s.heart_rate for s in batch.samples] == [62, None]
    event = check(C.EVENTS, {"event_id": "b7c1", "ts": ts(5), "type": "button.pressed", "service": "meal"})
    assert (event.type, event.service) == ("button.pressed", "meal")
    assert check(C.ACKS, {"command_id": "c-81f2", "ts": ts(6)}).command_id == "c-81f2"


def test_the_v1_1_self_test_event_and_commands_are_accepted():
    selftest = check(C.EVENTS, {"event_id": "st-1", "ts": ts(), "type": "device.selftest", "result": "fail",
                                "checks": {"button": True, "speaker": True, "battery": False},
                                "command_id": "c-9", "trigger": "platform"})
    assert (selftest.result, selftest.checks["battery"], selftest.command_id) == ("fail", False, "c-9")
    bare = check(C.EVENTS, {"event_id": "st-2", "ts": ts(), "type": "device.selftest", "result": "pass", "checks": {}})
    assert bare.trigger is None and bare.command_id is None
    from pydantic import TypeAdapter

    from homecare.contract.models import Command
    commands = TypeAdapter(Command)
    assert commands.validate_python({"command_id": "c-1", "type": "selftest.request"}).type == "selftest.request"
    assert commands.validate_python({"command_id": "c-2", "type": "config", "selftest_interval_h": 744}).selftest_interval_h == 744
    with pytest.raises(ValueError):
        commands.validate_python({"command_id": "c-3", "type": "config", "selftest_interval_h": 745})


def test_integer_milliseconds_and_offsets_are_the_same_instant():
    millis = int(NOW.timestamp() * 1000)
    by_ms = check(C.ACKS, {"command_id": "c", "ts": millis}).ts
    by_text = check(C.ACKS, {"command_id": "c", "ts": "2026-11-29T11:00:00+08:00"}).ts
    assert by_ms == by_text == NOW


def test_unknown_fields_are_ignored():
    status = check(C.STATUS, {"online": False, "new_field_from_fw_2": {"x": 1}})
    assert status.online is False


@pytest.mark.parametrize(
    ("channel", "payload", "expected"),
    [
        (C.TELEMETRY, {"samples": [sample(), sample(ts=ts(1), heart_rate=251)]}, "samples[1].heart_rate: must be <= 250"),
        (C.TELEMETRY, {"samples": [sample(respiration_rate=3)]}, "samples[0].respiration_rate: must be >= 4"),
        (C.TELEMETRY, {"samples": [sample(movement=1.5)]}, "samples[0].movement: must be <= 1"),
        (C.TELEMETRY, {"samples": [sample(heart_rate=60.5)]}, "samples[0].heart_rate: must be an integer"),
        (C.TELEMETRY, {"samples": [sample(occupied="yes")]}, "samples[0].occupied: must be true or false"),
        (C.TELEMETRY, {"samples": []}, "samples: must have at least 1"),
        (C.TELEMETRY, {"samples": [{"ts": ts(i), "occupied": False, "movement": 0} for i in range(601)]}, "samples: must have at most 600"),
        (C.TELEMETRY, {"samples": [sample(), sample()]}, "appears twice"),
        (C.TELEMETRY, {"samples": [{"occupied": True, "movement": 0.1}]}, "samples[0].ts: is required"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "button.pressed", "service": "pizza"}, "service: must be one of"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "door.opened"}, "type: unknown event type 'door.opened'"),
        (C.EVENTS, {"event_id": "e", "ts": ts()}, "type: is required"),
        (C.EVENTS, {"event_id": "", "ts": ts(), "type": "bed.exit"}, "event_id: must have at least 1"),
        (C.EVENTS, {"event_id": "e" * 65, "ts": ts(), "type": "bed.exit"}, "event_id: must have at most 64"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "fall.suspected"}, "confidence: is required"),
        (C.EVENTS, {"event_id": "e", "ts": ts(301), "type": "bed.exit"}, "ts: is more than 5 minutes in the future"),
        (C.EVENTS, {"event_id": "e", "ts": ts(-7 * 86400 - 1), "type": "bed.exit"}, "ts: is older than 7 days"),
        (C.EVENTS, {"event_id": "e", "ts": "2026-11-29T03:00:00", "type": "bed.exit"}, "ts: must carry a UTC offset"),
        (C.EVENTS, {"event_id": "e", "ts": True, "type": "bed.exit"}, "ts: must be an RFC 3339 string or integer"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "device.selftest", "checks": {}}, "result: is required"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "device.selftest", "result": "ok", "checks": {}}, "result: must be"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "device.selftest", "result": "pass"}, "checks: is required"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "device.selftest", "result": "pass",
                    "checks": {"speaker": "yes"}}, "checks.speaker: must be true or false"),
        (C.EVENTS, {"event_id": "e", "ts": ts(), "type": "device.selftest", "result": "fail", "checks": {},
                    "trigger": "cron"}, "trigger: must be"),
        (C.STATUS, {"online": True, "battery": 1.2}, "battery: must be <= 1"),
        (C.STATUS, {"fw": "1.0"}, "online: is required"),
        (C.ACKS, {"ts": ts()}, "command_id: is required"),
    ],
)
def test_rejections_name_the_field(channel, payload, expected):
    assert expected in reason(channel, payload)


def test_boundaries_are_inclusive():
    check(C.TELEMETRY, {"samples": [sample(heart_rate=20, respiration_rate=60, movement=1)]})
    check(C.TELEMETRY, {"samples": [sample(heart_rate=250, respiration_rate=4, movement=0)]})
    check(C.EVENTS, {"event_id": "e", "ts": ts(299), "type": "bed.exit"})


def test_payload_level_errors():
    assert "invalid JSON" in reason(C.STATUS, b"{online: true")
    assert "must be a JSON object" in reason(C.STATUS, b"[1, 2]")
    assert "not UTF-8" in reason(C.STATUS, b"\xff\xfe")
    big = json.dumps({"online": True, "pad": "x" * 70_000}).encode()
    with pytest.raises(ContractError) as info:
        check(C.STATUS, big)
    assert info.value.code == "size"


def test_devices_cannot_publish_on_platform_channels():
    with pytest.raises(ContractError) as info:
        check(C.COMMANDS, {"command_id": "x"})
    assert info.value.code == "topic"


def test_rejected_event_keeps_its_id_for_the_error_reply():
    with pytest.raises(ContractError) as info:
        check(C.EVENTS, {"event_id": "abc", "ts": ts(), "type": "button.pressed", "service": "?"})
    assert info.value.event_id == "abc"


def test_json_schema_exists_for_every_payload():
    schemas = json_schemas()
    assert set(schemas) == {"status", "telemetry", "events", "acks", "commands", "errors"}
    sample_schema = schemas["telemetry"]["$defs"]["Sample"]
    assert sample_schema["properties"]["heart_rate"]["anyOf"][0]["maximum"] == 250
    assert set(sample_schema["required"]) == {"ts", "occupied", "movement"}


def test_checked_in_schemas_are_current(tmp_path):
    from pathlib import Path

    from homecare.contract.schema import write_schemas

    checked_in = Path(__file__).resolve().parents[1] / "contract" / "schema"
    for fresh in write_schemas(tmp_path):
        assert (checked_in / fresh.name).read_text() == fresh.read_text(), (
            f"{fresh.name} is stale: run `make schema`"
        )
