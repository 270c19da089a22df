"""Result files: `bench/results/<date>-<kind>.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


def write_result(kind: str, body: dict[str, Any], out: Path | None = None) -> Path:
    """Write the result (pretty JSON) and return its path."""
    path = out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def numbered(kind: str) -> Path:
    """`bench/results/<date>-<kind>-<n>.json` with the first n not yet taken (runs of a day)."""
    n = 1
    while (path := RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{kind}-{n}.json").exists():
        n += 1
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
