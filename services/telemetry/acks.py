"""Manual acks that are only ever sent on the connection a message arrived on."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from homecare.mqtt import MqttLink


@dataclass(frozen=True)
class Receipt:
    """A received message and the connection it came on."""

    message: mqtt.MQTTMessage
    connection: int


class AckGate:
    """Acks received messages through a link, refusing acks that belong to a lost connection.

    After a reconnect the broker redelivers every un-acked message with its packet id; a late
    PUBACK for an id of the old connection could acknowledge another message that reuses the
    id before that one is durable. The redelivered copy is processed again (every effect is
    idempotent) and acknowledged then. paho 2.x's `Client.ack` only appends to a deque and wakes
    the network thread, so it is safe to call from a writer thread.
    """

    def __init__(self, link: MqttLink):
        self._link = link
        self._lock = threading.Lock()
        self._connection = 0
        # Wrap the link's callbacks (public paho attributes) to count connections and losses.
        on_connect, on_disconnect = link.client.on_connect, link.client.on_disconnect

        def counted_connect(*args) -> None:
            self._next()
            on_connect(*args)

        def counted_disconnect(*args) -> None:
            self._next()
            on_disconnect(*args)

        link.client.on_connect = counted_connect
        link.client.on_disconnect = counted_disconnect

    def _next(self) -> None:
        with self._lock:
            self._connection += 1

    def receipt(self, message: mqtt.MQTTMessage) -> Receipt:
        """Note which connection a message arrived on (call it in the paho callback)."""
        with self._lock:
            return Receipt(message, self._connection)

    def ack(self, receipt: Receipt) -> bool:
        """Ack the message if its connection is still the live one; whether it was acked."""
        with self._lock:
            if receipt.connection != self._connection:
                return False
            self._link.ack(receipt.message)
            return True


class AckOrder:
    """Acks windows in the order they were collected: a window committed early waits for the
    ones before it (MQTT wants PUBACKs in the order the messages came)."""

    def __init__(self, gate: AckGate):  # or anything with ack(receipt)
        self._gate = gate
        self._lock = threading.Lock()
        self._next = 0  # ticket of the next window to collect
        self._due = 0  # ticket of the next window to ack
        self._done: dict[int, list[Receipt]] = {}

    def ticket(self) -> int:
        """Called with the collect lock held, so tickets follow arrival order."""
        ticket, self._next = self._next, self._next + 1
        return ticket

    def done(self, ticket: int, receipts: list[Receipt]) -> None:
        with self._lock:
            self._done[ticket] = receipts
            while self._due in self._done:
                for receipt in self._done.pop(self._due):
                    self._gate.ack(receipt)
                self._due += 1
