"""A button of the benchmark's own: presses on demand and times the platform's answer. It tells
when the press path works again after a fault."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from homecare.contract import format_ts
from homecare.mqtt import BrokerAddress
from homecare.topics import DeviceChannel, device_topic

ANSWERS = ("request.acknowledged", "request.assigned")
# A provider at the door gets no reminder: each press asks for another service, and withdraws it.
SERVICES = ("mobility", "meal", "escort", "bathing")


class ProbeButton:
    """A real device connection (its own account), pressing `mobility` and acking commands."""

    def __init__(self, broker_url: str, device_id: str, secret: str):
        self.device_id = device_id
        self._answers: dict[str, float] = {}
        self._cond = threading.Condition()
        address = BrokerAddress.parse(broker_url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
        self._client.username_pw_set(device_id, secret)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.connect_async(address.host, address.port, keepalive=30)
        self._client.loop_start()
        self._presses = 0

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(device_topic(self.device_id, DeviceChannel.COMMANDS), qos=1)
        client.publish(device_topic(self.device_id, DeviceChannel.STATUS),
                       json.dumps({"online": True, "fw": "probe", "battery": 1.0}), qos=1, retain=True)

    def _on_message(self, client, userdata, message) -> None:
        try:
            command = json.loads(message.payload)
        except ValueError:
            return
        ack = {"command_id": command.get("command_id"), "ts": format_ts(datetime.now(UTC))}
        client.publish(device_topic(self.device_id, DeviceChannel.ACKS), json.dumps(ack), qos=1)
        if command.get("type") in ANSWERS:
            with self._cond:
                self._answers[command.get("command_id", "")] = time.monotonic()
                self._cond.notify_all()

    def press(self, timeout: float = 2.0, service: str | None = None) -> float | None:
        """Press once (for `service`, else the next of SERVICES); seconds until an answer arrived,
        or None if none came within `timeout`."""
        with self._cond:
            seen = set(self._answers)
        service = service or SERVICES[self._presses % len(SERVICES)]
        self._presses += 1
        sent = time.monotonic()
        if not self._event("button.pressed", service):
            return None
        with self._cond:
            got = self._cond.wait_for(lambda: set(self._answers) - seen, timeout)
            if not got:
                return None
            first = min(self._answers[c] for c in set(self._answers) - seen)
        self._event("button.cancelled", service)
        return first - sent

    def _event(self, type_: str, service: str) -> bool:
        event = {"event_id": str(uuid.uuid4()), "ts": format_ts(datetime.now(UTC)), "type": type_, "service": service}
        info = self._client.publish(device_topic(self.device_id, DeviceChannel.EVENTS), json.dumps(event), qos=1)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
