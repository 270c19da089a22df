"""JSON Schema of every mqtt-v1 payload, for firmware engineers and tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .models import Ack, Command, ErrorReply, Event, Status, Telemetry

SCHEMAS: dict[str, Any] = {
    "status": Status,
    "telemetry": Telemetry,
    "events": Event,
    "acks": Ack,
    "commands": Command,
    "errors": ErrorReply,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Schema per channel name."""
    out = {}
    for name, model in SCHEMAS.items():
        schema = TypeAdapter(model).json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema.setdefault("title", f"mqtt-v1 {name}")
        out[name] = schema
    return out


def write_schemas(folder: Path) -> list[Path]:
    """Write one `<channel>.schema.json` per payload into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
