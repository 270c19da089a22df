"""A suspected fall: an alert at once (dispatch opens an emergency request besides)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.telemetry.domain.rules.model import Finding, Rule, Severity, iso


def finding(device_id: str, resident_id: str, event_id: str, ts: datetime, confidence: float | None,
            emergency_requested: bool) -> Finding:
    """The alert of one fall.suspected event."""
    sure = "" if confidence is None else f" (confidence {confidence:.0%})"
    evidence: dict[str, Any] = {
        "event_id": event_id, "ts": iso(ts), "confidence": confidence, "emergency_requested": emergency_requested,
    }
    return Finding(
        rule=Rule.FALL,
        severity=Severity.CRITICAL,
        resident_id=resident_id,
        device_id=device_id,
        started_at=ts,
        summary=f"fall suspected by {device_id}{sure}",
        occurrence=f"{Rule.FALL.value}:{device_id}:{event_id}",
        evidence=evidence,
    )
