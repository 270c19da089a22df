"""Validation of raw device payloads, with rejection reasons that name the field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from homecare.topics import DeviceChannel

from .models import MAX_PAYLOAD_BYTES, Ack, Event, Status, Telemetry


class ContractError(ValueError):
    """A device message that breaks mqtt-v1; `reason` is what the device is told."""

    def __init__(self, reason: str, code: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code  # short, stable label for metrics: "json", "schema", "size", ...
        self.event_id = event_id


_EVENT = TypeAdapter(Event)
_MODELS: dict[DeviceChannel, type[BaseModel]] = {
    DeviceChannel.STATUS: Status,
    DeviceChannel.TELEMETRY: Telemetry,
    DeviceChannel.ACKS: Ack,
}


# Firmware engineers read these: say it the way the contract does.
_MESSAGES = {
    "less_than_equal": "must be <= {le}",
    "greater_than_equal": "must be >= {ge}",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} characters",
    "enum": "must be one of {expected}",
    "model_type": "must be an object",
    "dict_type": "must be an object",
}


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("samples", 3, "heart_rate")` -> `samples[3].heart_rate`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _loc_without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic puts the discriminator value (e.g. "button.pressed") into the location.
    return tuple(p for p in loc if not (isinstance(p, str) and "." in p))


def explain(error: ValidationError) -> str:
    """The first validation error as `field: message`, short enough for an errors topic."""
    first = error.errors(include_url=False)[0]
    path = field_path(_loc_without_union_tags(tuple(first["loc"]))) or "payload"
    message = _MESSAGES.get(first["type"], first["msg"]).format(**first.get("ctx", {}))
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "union_tag_invalid":
        path, message = "type", f"unknown event type {first['input'].get('type')!r}"
    elif first["type"] == "union_tag_not_found":
        path, message = "type", "is required"
    message = message.removeprefix("Value error, ")
    return f"{path}: {message}"


def decode(payload: bytes) -> dict[str, Any]:
    """Size-check and parse a payload into a JSON object, or raise ContractError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", "size")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise ContractError("payload: not UTF-8", "encoding") from None
    except json.JSONDecodeError as exc:
        raise ContractError(f"payload: invalid JSON ({exc.msg} at {exc.pos})", "json") from None
    if not isinstance(data, dict):
        raise ContractError("payload: must be a JSON object", "json")
    return data


def validate(channel: DeviceChannel, payload: bytes, now: datetime | None = None) -> Any:
    """Validate a device payload for its channel: a contract model, or ContractError."""
    if channel not in (*_MODELS, DeviceChannel.EVENTS):
        raise ContractError(f"topic: devices may not publish on {channel.value}", "topic")
    data = decode(payload)
    context = {"now": now}
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    try:
        if channel is DeviceChannel.EVENTS:
            return _EVENT.validate_python(data, context=context)
        return _MODELS[channel].model_validate(data, context=context)
    except ValidationError as exc:
        code = "timestamp" if _is_ts_error(exc) else "schema"
        raise ContractError(explain(exc), code, event_id) from None


def _is_ts_error(error: ValidationError) -> bool:
    return any(e["loc"] and e["loc"][-1] == "ts" for e in error.errors(include_url=False))
