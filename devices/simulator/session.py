"""One device's own MQTT connection, driven by a DeviceLoop and speaking for its Behaviour.

The session is the transport only: it connects with the device's credentials, publishes what
the behaviour produces, hands commands to the behaviour and keeps what cannot be sent while
offline. It also times presses (`PressTimer`), keeps the ledger of what the broker accepted
and can lose power (`power_cut`). Everything runs on the loop thread.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from homecare.mqtt import BrokerAddress
from homecare.topics import DeviceChannel, TopicError, device_topic, parse_device_topic

from .behaviour import Behaviour
from .clock import SimClock
from .ledger import Ledger
from .messages import OFFLINE, Outgoing
from .messages import encode as _json
from .presses import PressTimer
from .stats import SimStats
from .transport import DeviceClient, DeviceLoop, Timer

log = logging.getLogger(__name__)

KEEPALIVE_S = 60
MAX_OUTBOX = 2000  # messages kept while offline (~5 hours of bed batches); the oldest go first
BACKOFF_S = (1.0, 30.0)
CLOSE_WAIT_S = 5.0


class DeviceSession:
    """A device on the broker: connection, reconnection, ticks, commands, acks."""

    def __init__(
        self,
        loop: DeviceLoop,
        broker: BrokerAddress,
        secret: str,
        behaviour: Behaviour,
        clock: SimClock,
        stats: SimStats,
        *,
        keepalive: int = KEEPALIVE_S,
        time_presses: bool = True,
        ledger: Ledger | None = None,
    ):
        self.device_id = behaviour.device_id
        self.behaviour = behaviour
        self._loop, self._broker, self._clock, self._stats = loop, broker, clock, stats
        self._secret, self._keepalive, self._ledger = secret, keepalive, ledger
        self._rng = random.Random(self.device_id)
        self.presses = PressTimer(stats) if time_presses else None
        self.connected = False
        self.powered = True
        self._opened = self._closing = False
        self._backoff = BACKOFF_S[0]
        self._outbox: deque[Outgoing] = deque(maxlen=MAX_OUTBOX)
        self._inflight: dict[int, Outgoing] = {}
        self._tick_timer: Timer | None = None
        self._on_closed: Callable[[], None] | None = None
        self._close_mid: int | None = None
        self._silent_counted = False
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = DeviceClient(
            CallbackAPIVersion.VERSION2, client_id=self.device_id, clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(self.device_id, self._secret)
        client.will_set(self._topic(DeviceChannel.STATUS), _json(OFFLINE), qos=1, retain=True)
        client.max_inflight_messages_set(20)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.connect_async(self._broker.host, self._broker.port, self._keepalive)
        self._loop.attach(client)
        return client

    def _topic(self, channel: DeviceChannel) -> str:
        return device_topic(self.device_id, channel)

    # -- lifecycle (loop thread) --------------------------------------------------------------

    def open(self) -> None:
        """Power on: start sampling and connect."""
        if self._opened or self._closing:
            return
        self._opened = True
        self._connect()
        self._tick_timer = self._loop.call_later(self._rng.random() * self.behaviour.tick_interval(), self._tick)

    def close(self, on_closed: Callable[[], None] | None = None) -> None:
        """Power off cleanly: say offline (retained), then disconnect, so no last will is needed."""
        self._closing = True
        self._on_closed = on_closed
        if self._tick_timer:
            self._tick_timer.cancel()
        if not self.connected:
            self._disconnect_now()  # a connection being set up is ended; none: done now
            return
        info = self.client.publish(self._topic(DeviceChannel.STATUS), _json(OFFLINE), qos=1, retain=True)
        self._inflight[info.mid] = Outgoing(DeviceChannel.STATUS, OFFLINE, retain=True)
        self._close_mid = info.mid
        self._loop.call_later(CLOSE_WAIT_S, self._disconnect_now)

    def power_cut(self, outage_s: float, jitter_s: float) -> None:
        """Lose power: the connection drops without a DISCONNECT (the broker sends the last
        will), what was in memory is gone, and after the outage the device boots again at a
        random moment within `jitter_s`, as a district's devices do."""
        if self._closing or not self.powered:
            return
        self.powered = False
        self._stats.add("power_cuts")
        if self._tick_timer:
            self._tick_timer.cancel()
        if self.presses:
            self.presses.forget()
        self._outbox.clear()
        self._inflight.clear()
        old, self.connected = self.client, False
        self._loop.detach(old)
        sock = old.socket()
        if sock is not None:
            self._loop.forget_socket(sock)
            sock.close()  # no DISCONNECT: to the broker this is a vanished device
        self.client = self._make_client()  # a rebooted device: no in-flight state
        self._loop.call_later(outage_s + self._rng.uniform(0.0, jitter_s), self._power_on)

    def _power_on(self) -> None:
        if self._closing:
            return
        self.powered = True
        self._backoff = BACKOFF_S[0]
        restored = getattr(self.behaviour, "power_restored", None)
        if restored:
            restored()
        self._stats.add("boots_after_power_cut")
        self._connect()
        self._tick_timer = self._loop.call_later(self.behaviour.tick_interval(), self._tick)

    def _disconnect_now(self) -> None:
        if self.client.socket() is not None:
            self.client.disconnect()
        else:
            self._finish_close()

    def _finish_close(self) -> None:
        self._loop.detach(self.client)
        done, self._on_closed = self._on_closed, None
        if done:
            done()

    def _connect(self) -> None:
        if self._closing or not self.powered:
            return
        try:
            self.client.reconnect()  # opens the socket and queues CONNECT; the loop does the rest
        except OSError as exc:
            self._stats.add("connect_failures")
            log.debug("%s: cannot connect: %s", self.device_id, exc)
            self._retry()

    def _retry(self) -> None:
        delay = self._backoff * self._rng.uniform(0.7, 1.3)
        self._backoff = min(self._backoff * 2, BACKOFF_S[1])
        self._loop.call_later(delay, self._connect)

    # -- paho callbacks (loop thread) ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return
        if reason_code.is_failure:
            self._stats.add("connect_failures")
            log.warning("%s: broker refused the connection: %s", self.device_id, reason_code)
            return  # paho closes the socket; _on_disconnect schedules the retry
        self.connected = True
        self._backoff = BACKOFF_S[0]
        self._stats.add("connects")
        client.subscribe([(self._topic(DeviceChannel.COMMANDS), 1), (self._topic(DeviceChannel.ERRORS), 0)])
        status = self.behaviour.status()
        if status is not None:
            self._publish(status)
        while self._outbox and self.connected:
            self._publish(self._outbox.popleft())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self.client:
            return  # the client of a device that lost power
        was_connected, self.connected = self.connected, False
        if was_connected:
            self._stats.add("disconnects")
        if self._closing:
            self._finish_close()
            return
        if was_connected:
            log.info("%s: disconnected (%s), reconnecting", self.device_id, reason_code)
        self._retry()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if client is not self.client:
            return
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return
        self._count_sent(sent)
        if self._closing and mid == self._close_mid:
            self._disconnect_now()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if client is not self.client:
            return
        try:
            channel = parse_device_topic(message.topic).channel
            payload = json.loads(message.payload)
        except (TopicError, ValueError) as exc:
            log.warning("%s: unreadable message on %s: %s", self.device_id, message.topic, exc)
            return
        if channel is DeviceChannel.COMMANDS and isinstance(payload, dict):
            self._stats.add_typed("commands_received", str(payload.get("type")))
            if self.presses:
                self.presses.command(payload)
            replies = self.behaviour.on_command(payload, self._clock.now())
            if not replies and not self._silenced():
                # A command newer than the firmware (selftest.request to a device built before
                # v1.1) is the platform's to expect, not an invalid one.
                known = self.behaviour.knows(payload.get("type"))
                self._stats.add("invalid_commands" if known else "unknown_commands")
            for reply in replies:
                self.send(reply)
        elif channel is DeviceChannel.ERRORS:
            self._error_reply(payload)

    def _error_reply(self, payload: object) -> None:
        self._stats.add("errors_received")
        if getattr(self.behaviour, "fault", None) is not None:
            return  # a misbehaving device is told off, as expected
        # The reference client was refused: the platform and the contract disagree somewhere.
        seen = self._stats.get("errors_received")
        if seen <= 20 or seen % 100 == 0:
            log.error("%s: platform rejected a message (%d so far): %s", self.device_id, seen, payload)

    def _silenced(self) -> bool:
        return getattr(self.behaviour, "fault", None) == "silent" and self.behaviour.active

    # -- sending ------------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            for out in self.behaviour.tick(self._clock.now()):
                self.send(out)
            if not self._silent_counted and self._silenced():
                self._silent_counted = True
                self._stats.add("silent_devices")
        finally:
            if not self._closing and self.powered:
                self._tick_timer = self._loop.call_later(self.behaviour.tick_interval(), self._tick)

    def send(self, out: Outgoing) -> None:
        """Publish now, or keep it for when the connection is back (a fresh status is sent then)."""
        if self.presses and out.well_formed and out.kind == "button.pressed":
            self.presses.pressed(out.payload["service"])
            self._stats.mark("press_sent_at", out.payload["event_id"], time.time())
        if self.connected:
            self._publish(out)
        elif out.channel is not DeviceChannel.STATUS:
            self._outbox.append(out)

    def _publish(self, out: Outgoing) -> None:
        info = self.client.publish(self._topic(out.channel), out.wire, qos=out.qos, retain=out.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("%s: publish refused locally: rc=%s", self.device_id, info.rc)
            return
        self._inflight[info.mid] = out

    def _count_sent(self, out: Outgoing) -> None:
        """Count a message once the broker has it (PUBACK)."""
        stats = self._stats
        stats.add("messages_sent")
        if out.label is not None:
            stats.add_typed("misbehaviour_sent", out.label)
            if not out.well_formed:
                return
        if self._ledger is not None:
            self._ledger.accepted(self.device_id, out)
        if out.channel is DeviceChannel.TELEMETRY:
            stats.add("telemetry_batches_sent")
            stats.add("samples_sent", len(out.payload["samples"]))
        elif out.channel is DeviceChannel.EVENTS:
            stats.add_typed("events_sent", out.kind)
            if out.kind == "button.pressed":
                stats.add("presses")
            elif out.kind == "button.cancelled":
                stats.add("cancels")
            elif out.kind == "device.selftest":
                stats.add_typed("selftests_sent", f"{out.payload.get('trigger')}.{out.payload['result']}")
        elif out.channel is DeviceChannel.ACKS:
            stats.add("acks_sent")
        elif out.channel is DeviceChannel.STATUS:
            stats.add("status_sent")
