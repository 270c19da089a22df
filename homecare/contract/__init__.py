"""The device contract mqtt-v1: models, validation, JSON Schema."""

from .models import (
    EVENTS_BY_KIND,
    MAX_PAYLOAD_BYTES,
    Ack,
    BatteryLow,
    BedEntry,
    BedExit,
    ButtonCancelled,
    ButtonPressed,
    Command,
    CommandType,
    Config,
    DeviceKind,
    ErrorReply,
    Event,
    FallSuspected,
    RequestAcknowledged,
    RequestAssigned,
    RequestCancelled,
    RequestCompleted,
    Sample,
    Service,
    Status,
    Telemetry,
)
from .timestamps import format_ts, parse_ts
from .validate import ContractError, validate

__all__ = [
    "MAX_PAYLOAD_BYTES", "Ack", "BatteryLow", "BedEntry", "BedExit", "ButtonCancelled",
    "ButtonPressed", "Command", "CommandType", "Config", "ContractError", "DeviceKind",
    "ErrorReply", "Event", "EVENTS_BY_KIND", "FallSuspected", "RequestAcknowledged",
    "RequestAssigned", "RequestCancelled", "RequestCompleted", "Sample", "Service", "Status",
    "Telemetry", "format_ts", "parse_ts", "validate",
]
