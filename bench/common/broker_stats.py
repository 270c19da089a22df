"""The broker's own figures ($SYS/broker/...), as the benchmark's observer account sees them."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from homecare.mqtt import BrokerAddress

STORED = "$SYS/broker/store/messages/count"  # messages held: retained, queued for sessions, in flight
CONNECTED = "$SYS/broker/clients/connected"
RECEIVED_1MIN = "$SYS/broker/load/messages/received/1min"
SENT_1MIN = "$SYS/broker/load/messages/sent/1min"


class BrokerStats:
    """Latest value of every $SYS/broker topic; reconnects on its own after a broker restart."""

    def __init__(self, broker_url: str, client_id: str = "bench-sys-observer"):
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()
        address = BrokerAddress.parse(broker_url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe("$SYS/broker/#", qos=0)
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 2)
        self._client.connect_async(address.host, address.port, keepalive=30)
        self._client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self._values[message.topic] = message.payload.decode(errors="replace")

    def number(self, topic: str) -> float | None:
        with self._lock:
            value = self._values.get(topic)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def wait(self, topic: str, timeout: float = 10.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.number(topic)
            if value is not None:
                return value
            time.sleep(0.2)
        return None

    def snapshot(self) -> dict[str, float | None]:
        return {name: self.number(topic) for name, topic in (
            ("stored_messages", STORED), ("clients_connected", CONNECTED),
            ("received_per_min", RECEIVED_1MIN), ("sent_per_min", SENT_1MIN))}

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
