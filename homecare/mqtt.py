"""paho-mqtt plumbing: URLs, clients with persistent sessions, subscribe-on-connect, publish
with a callback on the broker's acknowledgement, and manual acks of received messages."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

MessageHandler = Callable[[mqtt.Client, mqtt.MQTTMessage], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """`mqtt://user:pass@host:1883` (or `mqtts://`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_credentials(self, username: str | None, password: str | None) -> BrokerAddress:
        """The same broker with other credentials (a device's, a service account's)."""
        return BrokerAddress(self.host, self.port, username, password, self.tls)

    def url(self) -> str:
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


class MqttLink:
    """One persistent-session paho client run by its own network thread.

    Subscriptions are (re)made in on_connect, so a broker restart loses nothing. Handlers are
    wrapped so that a paho callback never raises. `publish(..., on_done=f)` calls f once the
    broker has acknowledged a QoS 1 publish; that is how a consumer acks its input only after
    its output is durable.
    """

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        *,
        subscriptions: dict[str, MessageHandler] | None = None,
        manual_ack: bool = False,
        clean_session: bool = False,
        keepalive: int = 30,
        will: tuple[str, bytes, int, bool] | None = None,
        max_inflight: int = 100,
        unsubscribe: list[str] | None = None,
        fallback: MessageHandler | None = None,
    ):
        self.address = address
        self.client_id = client_id
        self._subscriptions = dict(subscriptions or {})
        self._unsubscribe = list(unsubscribe or [])  # filters a resumed session may still hold
        self._keepalive = keepalive
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # the broker acknowledged this connection's SUBSCRIBE
        self._pending: dict[int, Callable[[], None]] = {}
        # PUBACKs that arrived before publish() registered their callback: mid -> sequence.
        self._early: dict[int, int] = {}
        self._seq = 0
        self._held: deque[tuple] = deque()  # publishes paho had no room for, oldest first
        self._lock = threading.RLock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set()
        if will:
            self.client.will_set(*will)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)  # unbounded: never drop our own output
        # Services are few: back soon after a broker restart. A shared subscription ($share/...)
        # with no member connected loses what devices publish meanwhile (mosquitto 2.0).
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        for topic_filter, handler in self._subscriptions.items():
            self.client.message_callback_add(_match_filter(topic_filter), self._guard(handler))
        if fallback is not None:  # a message no filter of ours matches (see `unsubscribe`)
            self.client.on_message = self._guard(fallback)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, wait: float = 15.0) -> None:
        """Connect and run the network thread; wait until connected (or raise TimeoutError)."""
        self.client.connect_async(self.address.host, self.address.port, self._keepalive)
        self.client.loop_start()
        if wait and not self._connected.wait(wait):
            raise TimeoutError(f"{self.client_id}: no connection to {self.address.host}:{self.address.port}")

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the subscriptions of the current connection are in place (SUBACK)."""
        return self._subscribed.wait(timeout)

    # -- messages ----------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Publish; `on_done` runs once the broker has it (PUBACK for QoS 1, sent for QoS 0).

        paho gives up (rc=15) when all 65,535 message ids are taken by unacknowledged messages;
        such a publish is held here and sent as acknowledgements free ids, in order, so its
        `on_done` still runs (a dropped callback left a device message un-acked forever). The info
        returned for a held message has rc=MQTT_ERR_QUEUE_SIZE: wait on `on_done`, not on it."""
        with self._lock:
            if self._held:  # behind what is already waiting, to keep the order
                self._held.append((topic, payload, qos, retain, on_done))
                return _held_info()
        info = self._send(topic, payload, qos, retain, on_done)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            with self._lock:
                self._held.appendleft((topic, payload, qos, retain, on_done))
                if len(self._held) == 1:
                    log.warning("%s: paho's queue is full; holding publishes until the broker catches up",
                                self.client_id)
        return info

    @property
    def held(self) -> int:
        """Publishes waiting for paho to have room (a measure of backlog)."""
        return len(self._held)

    def _send(self, topic: str, payload: bytes | str, qos: int, retain: bool,
              on_done: Callable[[], None] | None) -> mqtt.MQTTMessageInfo:
        # paho calls on_publish while holding its own message lock, which client.publish takes
        # too: holding self._lock across client.publish would deadlock against a PUBACK. So the
        # PUBACK may come first; _on_publish then leaves the mid in _early for us to find.
        with self._lock:
            self._seq += 1
            started = self._seq
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if on_done is None or info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return info
        queued = info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0  # paho sends it on reconnect
        if info.rc != mqtt.MQTT_ERR_SUCCESS and not queued:
            log.error("publish to %s refused locally: rc=%s", topic, info.rc)
            return info
        with self._lock:
            acked = self._early.pop(info.mid, 0)
            if acked <= started:  # not acknowledged yet (or a stale mark of an earlier message)
                self._pending[info.mid] = on_done
                return info
        self._run(on_done)
        return info

    def _release_held(self) -> None:
        """An id was freed: send what was held, until paho is full again."""
        while True:
            with self._lock:
                if not self._held:
                    return
                item = self._held.popleft()
            if self._send(*item).rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                with self._lock:
                    self._held.appendleft(item)
                return

    def ack(self, message: mqtt.MQTTMessage) -> None:
        """Acknowledge a received message (manual-ack mode) now that its effect is durable."""
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    # -- paho callbacks ----------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("%s: broker refused connection: %s", self.client_id, reason_code)
            return
        if self._unsubscribe and flags.session_present:
            client.unsubscribe(self._unsubscribe)
        if self._subscriptions:
            client.subscribe([(f, 1) for f in self._subscriptions])
        self._connected.set()
        log.info("%s connected to broker", self.client_id, extra={"session_present": flags.session_present})

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("%s: broker refused a subscription: %s", self.client_id, refused)
        self._subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if reason_code.value != 0:
            log.warning("%s disconnected from broker: %s", self.client_id, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            done = self._pending.pop(mid, None)
            if done is None:
                self._seq += 1
                self._early[mid] = self._seq
                if len(self._early) > 4096:  # marks of publishes without on_done: keep recent
                    keep = sorted(self._early.items(), key=lambda kv: kv[1])[-1024:]
                    self._early = dict(keep)
        if done is not None:
            self._run(done)
        if self._held:
            self._release_held()

    def _run(self, done: Callable[[], None]) -> None:
        try:
            done()
        except Exception:
            log.exception("%s: publish completion handler failed", self.client_id)

    def _guard(self, handler: MessageHandler) -> Callable:
        def guarded(client, userdata, message) -> None:
            try:
                handler(client, message)
            except Exception:  # a paho callback never raises: log, acknowledge, keep consuming
                # Acknowledged (a no-op unless manual_ack), so that it does not hold a slot of
                # the broker's in-flight window until the connection ends: enough such messages
                # stall the session, and every message behind them.
                try:
                    log.exception(
                        "%s: handler failed for %s; acknowledging it", self.client_id, message.topic,
                        extra={"payload": bytes(message.payload[:200]), "mid": message.mid},
                    )
                finally:
                    try:
                        self.ack(message)
                    except Exception:
                        log.exception("%s: could not acknowledge mid %s", self.client_id, message.mid)

        return guarded


def _held_info() -> mqtt.MQTTMessageInfo:
    info = mqtt.MQTTMessageInfo(0)
    info.rc = mqtt.MQTT_ERR_QUEUE_SIZE
    return info


def _match_filter(topic_filter: str) -> str:
    """Messages of a shared subscription arrive under the plain topic: match on that."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter
