"""Validation of raw device payloads, with rejection reasons that name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
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
    "literal_error": "must be one of {expected}",
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
    template = _MESSAGES.get(first["type"])
    # Only our own templates are formatted: pydantic's message may quote the device's input,
    # braces and all (an event type of {"{": 1} once made this raise KeyError).
    message = template.format(**first.get("ctx", {})) if template else first["msg"]
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "union_tag_invalid":
        path, message = "type", f"unknown event type {_quoted(first['input'].get('type'))}"
    elif first["type"] == "union_tag_not_found":
        path, message = "type", "is required"
    message = message.removeprefix("Value error, ")
    return _shortened(f"{_shortened(path, 100)}: {message}", MAX_REASON)


MAX_REASON = 300  # characters of a reason: the device's input is quoted, never in full


def _quoted(value: object) -> str:
    return _shortened(repr(value), 60)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# The deepest a contract payload is is 3 (telemetry: object, samples, sample); unknown fields
# may nest a little more. Deeper is refused before any model, log line or repr walks it (a few
# thousand `[` made json.loads raise RecursionError, which no caller expected).
MAX_DEPTH = 32


def decode(payload: bytes) -> dict[str, Any]:
    """Size-check and parse a payload into a JSON object, or raise ContractError.

    The one parser of device JSON (orjson, as the telemetry fast path): strict RFC 8259, so
    NaN, Infinity, lone surrogates, invalid UTF-8 and control characters in strings are refused,
    as is nesting deeper than MAX_DEPTH. It raises nothing but ContractError, whatever the bytes.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", "size")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _undecodable(bytes(payload), exc) from None
    if not isinstance(data, dict):
        raise ContractError("payload: must be a JSON object", "json")
    if nested_deeper_than(data, MAX_DEPTH):
        raise ContractError(f"payload: invalid JSON (nested deeper than {MAX_DEPTH} levels)", "json")
    return data


def _undecodable(payload: bytes, exc: orjson.JSONDecodeError) -> ContractError:
    """Why orjson refused a payload, said the way a firmware engineer can act on."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad:
        return ContractError(f"payload: not UTF-8 (byte {bad.start})", "encoding")
    pos = exc.pos if isinstance(exc.pos, int) else 0
    what = exc.msg
    if what.startswith("depth limit exceeded"):
        what = f"nested deeper than {MAX_DEPTH} levels"
    elif payload[pos:pos + 3] == b"NaN" or payload[pos:pos + 8] == b"Infinity":
        what = f"NaN and Infinity are not JSON numbers, at {pos}"
    elif "surrogate" in what:
        what = f"{what} (lone UTF-16 surrogate escape), at {pos}"
    else:
        what = f"{what} at {pos}"
    return ContractError(f"payload: invalid JSON ({what})", "json")


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value has containers nested more than `limit` deep; iterative, and
    it stops at the first container too deep."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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
