"""A suspected fall opens an emergency request: Internal fall.suspected events become
OpenRequest messages for dispatch, and an event is acked only once the broker has the request."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from homecare.contract.models import Service
from homecare.internal import DeviceEvent, OpenRequest
from homecare.mqtt import MqttLink
from homecare.topics import Internal, internal_event_topic

from . import metrics
from .acks import AckGate

log = logging.getLogger(__name__)

FALL_EVENT = "fall.suspected"
FALL_TOPIC = internal_event_topic(FALL_EVENT)


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


class FallForwarder:
    """Consumes fall.suspected events and publishes an OpenRequest for each."""

    def __init__(self, link: MqttLink, gate: AckGate, min_confidence: float = 0.0):
        self._link = link
        self._gate = gate
        self._min_confidence = min_confidence

    def on_message(self, client, message) -> None:
        """Forward one event (runs on the paho network thread; publishing does not block)."""
        receipt = self._gate.receipt(message)
        try:
            event = DeviceEvent.model_validate_json(message.payload)
        except ValidationError as exc:
            metrics.MESSAGES_REJECTED.labels(FALL_TOPIC, "unparseable").inc()
            log.warning(
                "dropping fall event: %s", exc.errors()[0]["msg"],
                extra={"payload": bytes(message.payload[:200])},
            )
            self._gate.ack(receipt)
            return
        request = open_request_for(event, self._min_confidence)
        if request is None:
            log.info("fall below confidence threshold ignored", extra={"device_id": event.device_id})
            self._gate.ack(receipt)
            return

        def forwarded() -> None:
            metrics.FALLS_FORWARDED.inc()
            log.info(
                "suspected fall forwarded to dispatch",
                extra={"device_id": event.device_id, "event_id": event.event_id},
            )
            self._gate.ack(receipt)

        self._link.publish(Internal.OPEN_REQUEST, request.dumps(), qos=1, on_done=forwarded)
