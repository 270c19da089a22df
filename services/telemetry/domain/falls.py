"""A suspected fall opens an emergency request: fall.suspected events become OpenRequest
messages for dispatch (put into the log by the alert consumer before it acknowledges the event)."""

from __future__ import annotations

from homecare.contract.models import Service
from homecare.internal import DeviceEvent, OpenRequest

FALL_EVENT = "fall.suspected"


def open_request_for(event: DeviceEvent, min_confidence: float = 0.0) -> OpenRequest | None:
    """The emergency request a suspected fall opens, or None when its confidence is too low."""
    if event.confidence is not None and event.confidence < min_confidence:
        return None
    confidence = "" if event.confidence is None else f" (confidence {event.confidence:.2f})"
    return OpenRequest(
        source="device",
        # The same event always gives the same key, so dispatch opens one request for it.
        source_id=f"{event.device_id}:{event.event_id}",
        resident_id=event.resident_id,
        service=Service.EMERGENCY,
        reason=f"fall suspected by {event.device_id}{confidence}",
        device_id=event.device_id,
    )
