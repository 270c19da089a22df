"""The MQTT device contract (mqtt-v1) as pydantic models. Unknown fields are ignored."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from .timestamps import check_window, format_ts, parse_ts

MAX_PAYLOAD_BYTES = 64 * 1024


class Service(StrEnum):
    MEAL = "meal"
    BATHING = "bathing"
    ESCORT = "escort"
    MOBILITY = "mobility"
    EMERGENCY = "emergency"


class DeviceKind(StrEnum):
    BED = "bed"
    BUTTON = "button"


Fraction = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]  # strict float still takes 0 and 1


def _no_nul(value: str) -> str:
    # Valid JSON (`\u0000`), but PostgreSQL text cannot hold it: a string the platform keeps
    # with one would fail every write of it, so it is refused here, naming the field.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000)")
    return value


# A device string the platform stores (event ids, command ids, firmware versions).
NoNul = AfterValidator(_no_nul)


class _Message(BaseModel):
    # Forward compatible: fields a newer firmware adds are ignored, not rejected.
    model_config = ConfigDict(extra="ignore", frozen=True)


def _validate_ts(value: object, info: ValidationInfo) -> datetime:
    ts = parse_ts(value)
    context = info.context or {}
    if not context.get("skip_window"):
        check_window(ts, context.get("now"))
    return ts


Timestamp = Annotated[
    datetime,
    PlainValidator(_validate_ts),
    # An explicit serializer: with a plain validator alone pydantic 2.13 warns on every dump.
    PlainSerializer(format_ts, return_type=str, when_used="json"),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "format": "date-time", "description": "RFC 3339 in UTC"},
            {"type": "integer", "description": "milliseconds since the Unix epoch"},
        ],
        "description": "rejected when more than 5 minutes in the future or older than 7 days",
    }),
]


class _Timestamped(_Message):
    ts: Timestamp


# --- device -> platform -------------------------------------------------------------------


class Status(_Message):
    """`status`: published on connect and on battery/firmware change; the will sends online=false."""

    online: StrictBool
    fw: Annotated[StrictStr, Field(max_length=64), NoNul] | None = None
    battery: Fraction | None = None
    rssi: StrictInt | None = Field(default=None, ge=-150, le=0)


class Sample(_Timestamped):
    occupied: StrictBool
    heart_rate: Annotated[StrictInt, Field(ge=20, le=250)] | None = None
    respiration_rate: Annotated[StrictInt, Field(ge=4, le=60)] | None = None
    movement: Fraction


class Telemetry(_Message):
    """`telemetry`: a batch of 1-600 one-second bed samples."""

    samples: list[Sample] = Field(min_length=1, max_length=600)

    @field_validator("samples")
    @classmethod
    def _unique_ts(cls, samples: list[Sample]) -> list[Sample]:
        seen: set[datetime] = set()
        for sample in samples:
            if sample.ts in seen:
                raise ValueError(f"ts {sample.ts.isoformat()} appears twice in the batch")
            seen.add(sample.ts)
        return samples


EventId = Annotated[StrictStr, Field(min_length=1, max_length=64), NoNul]


class _Event(_Timestamped):
    event_id: EventId


class ButtonPressed(_Event):
    type: Literal["button.pressed"]
    service: Service


class ButtonCancelled(_Event):
    type: Literal["button.cancelled"]
    service: Service


class BedExit(_Event):
    type: Literal["bed.exit"]


class BedEntry(_Event):
    type: Literal["bed.entry"]


class FallSuspected(_Event):
    type: Literal["fall.suspected"]
    confidence: Fraction


class BatteryLow(_Event):
    type: Literal["battery.low"]
    battery: Fraction


CheckName = Annotated[StrictStr, Field(min_length=1, max_length=64), NoNul]


class DeviceSelftest(_Event):
    """v1.1: the device tested itself, on its schedule, at the resident's test press, or when the
    platform asked (`selftest.request`, whose `command_id` it then carries)."""

    type: Literal["device.selftest"]
    result: Literal["pass", "fail"]
    checks: dict[CheckName, StrictBool] = Field(max_length=32)
    command_id: Annotated[StrictStr, Field(min_length=1, max_length=64), NoNul] | None = None
    trigger: Literal["schedule", "resident", "platform"] | None = None


Event = Annotated[
    ButtonPressed | ButtonCancelled | BedExit | BedEntry | FallSuspected | BatteryLow | DeviceSelftest,
    Field(discriminator="type"),
]

# Which device kinds may send which event types.
EVENTS_BY_KIND: dict[DeviceKind, frozenset[str]] = {
    DeviceKind.BUTTON: frozenset({"button.pressed", "button.cancelled", "battery.low", "device.selftest"}),
    DeviceKind.BED: frozenset({"bed.exit", "bed.entry", "fall.suspected", "battery.low", "device.selftest"}),
}




class Ack(_Timestamped):
    """`acks`: the device has shown or applied a command."""

    command_id: Annotated[StrictStr, Field(min_length=1, max_length=64), NoNul]


# --- platform -> device -------------------------------------------------------------------


class CommandType(StrEnum):
    ACKNOWLEDGED = "request.acknowledged"
    ASSIGNED = "request.assigned"
    COMPLETED = "request.completed"
    CANCELLED = "request.cancelled"
    CONFIG = "config"
    SELFTEST_REQUEST = "selftest.request"


class _Command(_Message):
    command_id: Annotated[str, Field(min_length=1, max_length=64)]


class RequestAcknowledged(_Command):
    type: Literal["request.acknowledged"] = "request.acknowledged"
    request_id: str
    service: Service


class RequestAssigned(_Command):
    type: Literal["request.assigned"] = "request.assigned"
    request_id: str
    service: Service
    provider: str
    eta_minutes: int = Field(ge=0)


class RequestCompleted(_Command):
    type: Literal["request.completed"] = "request.completed"
    request_id: str
    service: Service


class RequestCancelled(_Command):
    type: Literal["request.cancelled"] = "request.cancelled"
    request_id: str
    service: Service
    reason: str


class Config(_Command):
    type: Literal["config"] = "config"
    report_interval_s: int | None = Field(default=None, ge=1, le=600)
    sample_interval_s: int | None = Field(default=None, ge=1, le=60)
    selftest_interval_h: int | None = Field(default=None, ge=1, le=744)  # v1.1


class SelftestRequest(_Command):
    """v1.1: run the self-test now and publish `device.selftest` with this `command_id`."""

    type: Literal["selftest.request"] = "selftest.request"


Command = Annotated[
    RequestAcknowledged | RequestAssigned | RequestCompleted | RequestCancelled | Config | SelftestRequest,
    Field(discriminator="type"),
]


class ErrorReply(_Message):
    """`errors`: why a device's message was rejected."""

    topic: str
    reason: str
    event_id: str | None = None
