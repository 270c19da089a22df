"""What an edge lane has received from the broker and not yet acknowledged.

The broker sends a session only so many unacknowledged QoS 1 messages (its in-flight window);
a message the edge never acknowledges holds a slot until the connection ends, and enough of them
stall the lane: a poison payload that made a handler raise once did that, and a healthy
button's emergency press waited behind them for over 85 s. So the lane's link records every
message as it arrives and forgets it when it is acknowledged: the age of the oldest one left is
how stuck the lane is (readiness, and the `homecare_gateway_oldest_unacked_seconds` gauge).
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt

from homecare.mqtt import MessageHandler, MqttLink

log = logging.getLogger(__name__)


class InFlight:
    """Received QoS 1/2 messages not yet acknowledged, oldest first (network and worker threads)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        # mid -> (the message, when it arrived); insertion order is arrival order.
        self._messages: dict[int, tuple[mqtt.MQTTMessage, float]] = {}

    def received(self, message: mqtt.MQTTMessage) -> None:
        if message.qos == 0:
            return
        with self._lock:
            # A redelivery after a reconnect reuses its id: it is the one to acknowledge now.
            self._messages.pop(message.mid, None)
            self._messages[message.mid] = (message, self._clock())

    def settle(self, message: mqtt.MQTTMessage) -> bool:
        """Forget an acknowledged message; False when it is not in flight (acknowledged before,
        or its id now belongs to a later message, which a second ack would wrongly release)."""
        if message.qos == 0:
            return False
        with self._lock:
            entry = self._messages.get(message.mid)
            if entry is None or entry[0] is not message:
                return False
            del self._messages[message.mid]
            return True

    def clear(self) -> None:
        """A new connection: the broker redelivers what the old one left unacknowledged."""
        with self._lock:
            self._messages.clear()

    def __len__(self) -> int:
        return len(self._messages)

    def oldest_age(self) -> float:
        """Seconds since the oldest unacknowledged message arrived; 0 when there is none."""
        with self._lock:
            first = next(iter(self._messages.values()), None)
        return 0.0 if first is None else max(self._clock() - first[1], 0.0)


class EdgeLink(MqttLink):
    """The lane's inbound session: an MqttLink (manual acks) that keeps an InFlight table.

    Every handler is wrapped to record the message before it runs; an ack of a message that is
    not in flight is not sent, so that a message dealt with twice (rejected after a failure that
    came after it was acknowledged) never releases another message that reuses its id.
    """

    def __init__(self, *args, **kwargs):
        self.in_flight = InFlight()  # before MqttLink wraps the handlers with _guard
        super().__init__(*args, **kwargs)

    def _guard(self, handler: MessageHandler):
        def recorded(client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
            self.in_flight.received(message)
            handler(client, message)

        return super()._guard(recorded)

    def ack(self, message: mqtt.MQTTMessage) -> None:
        if self.in_flight.settle(message):
            super().ack(message)
        elif message.qos > 0:
            log.debug("%s: not acknowledging %s mid %s again", self.client_id, message.topic, message.mid)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.in_flight.clear()
        super()._on_connect(client, userdata, flags, reason_code, properties)
