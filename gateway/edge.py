"""The device edge: every device message checked, then forwarded or rejected.

The edge runs in two lanes, each its own MQTT session, worker and housekeeper: `control` takes
button events and command acks, `bulk` takes telemetry and statuses. A broker
delivers a session's messages in order, so with one session a resident's press waited behind
every sample queued before it; apart, a backlog of samples never delays a call for help."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from homecare.contract import EVENTS_BY_KIND, ContractError, DeviceKind, validate
from homecare.log import Log
from homecare.mqtt import BrokerAddress
from homecare.settings import Settings
from homecare.shards import Shard, Shards
from homecare.topics import (
    DEVICE_PUBLISHES,
    DeviceChannel,
    DeviceTopic,
    TopicError,
    all_devices_filter,
    parse_device_topic,
)

from .announce import Announcer
from .cache import DeviceCache
from .fastpath import batch_part, fast_samples
from .flood import FloodGate, Verdict
from .forwarder import Forwarder
from .housekeeping import Housekeeper
from .inflight import EdgeLink
from .liveness import Liveness
from .metrics import MESSAGES, OLDEST_UNACKED, THROTTLED
from .rejections import Rejections
from .settings import GatewaySettings
from .worker import Worker

log = logging.getLogger(__name__)

GROUP = "gateway"  # shared-subscription group: replicas split the devices' messages
# The reason a device is given when the gateway itself failed on its message (code `internal`).
INTERNAL_REASON = "payload: the gateway could not process this message"


@dataclass(frozen=True)
class Lane:
    """One session of the edge: the device channels it takes, and which of the housekeeper's
    periodic jobs it runs (each job in one lane only)."""

    name: str
    channels: tuple[DeviceChannel, ...]
    sweeps: frozenset[str]

    def client_id(self, settings: Settings) -> str:
        # The bulk lane keeps the id the single session had, so its persistent session resumes.
        base = settings.client_id("gateway")
        return f"{base}-{self.name}" if self.name != "bulk" else base


# Each lane invalidates revoked devices in its process's cache (the lanes may run apart).
BULK = Lane("bulk", (DeviceChannel.TELEMETRY, DeviceChannel.STATUS),
            frozenset({"revoked", "silent", "announce", "prune"}))
CONTROL = Lane("control", (DeviceChannel.EVENTS, DeviceChannel.ACKS), frozenset({"revoked"}))
LANES = (BULK, CONTROL)
LANE_BY_NAME = {lane.name: lane for lane in LANES}
assert sorted(c for lane in LANES for c in lane.channels) == sorted(DEVICE_PUBLISHES)


def lane_filters(settings: Settings, lane: Lane) -> list[str]:
    """The topic filters a lane subscribes to."""
    return [settings.share(GROUP, all_devices_filter(channel)) for channel in lane.channels]


def broker_address(settings: Settings, shard: Shard | None = None) -> BrokerAddress:
    """The broker of the shard the gateway bridges (default: the only one), with the service
    account when one is configured."""
    shard = shard or Shards.from_settings(settings).bridged("")
    address = BrokerAddress.parse(shard.url)
    if settings.mqtt_service_username:
        address = address.with_credentials(
            settings.mqtt_service_username, settings.mqtt_service_password
        )
    return address


def flood_gate(config: GatewaySettings) -> FloodGate:
    """One per process, shared by the lanes: a device's budget covers all its channels."""
    return FloodGate(
        config.device_rate_per_s, config.device_burst, config.flood_event_repeat_s,
        config.flood_reply_every_s, config.flood_backlog_s,
    )


class Edge:
    """One lane of the device edge on its own persistent session (see the module's doc)."""

    def __init__(
        self, settings: Settings, config: GatewaySettings, pool: ConnectionPool, cache: DeviceCache,
        lane: Lane, flood: FloodGate, log_: Log,
    ):
        self.cache = cache
        self.lane = lane
        # One filter per channel, so our own commands/errors don't echo.
        subscriptions = dict.fromkeys(lane_filters(settings, lane), self._received)
        # A persistent session keeps its subscriptions: drop the other lanes' (a session of the
        # single-lane edge had them all). Until the broker has done so, what it still sends for
        # them is handled here all the same, never left un-acked.
        others = [f for other in LANES if other is not lane for f in lane_filters(settings, other)]
        self.link = EdgeLink(
            broker_address(settings, config.bridged_shard(settings)), lane.client_id(settings),
            subscriptions=subscriptions, manual_ack=True, clean_session=False, unsubscribe=others,
            fallback=self._received,
        )
        # The lane publishes only `errors` replies on the broker, at QoS 0: nothing waits for a
        # PUBACK behind the device messages the broker queued for this session. Forwards go to
        # the log, and the device's message is acknowledged here once the log has stored them.
        self.log = log_  # the process's connection to the internal log, shared by its lanes
        self.forward = Forwarder(self.link, log_)
        self.flood = flood  # shared with the process's other lane (see flood_gate)
        self.worker = Worker(f"gateway-{lane.name}", config.queue_size, idle=self._idle)
        self.announcer = Announcer(log_)
        self.rejections = Rejections(self.link, config.log_payload_bytes)
        self.liveness = Liveness(
            self.link, pool, self.announcer, self.rejections, cache,
            config.status_window_ms / 1000, config.status_max_batch,
        )
        self.housekeeper = Housekeeper(self, pool, config)
        OLDEST_UNACKED.labels(lane.name).set_function(self.oldest_unacked_s)

    def oldest_unacked_s(self) -> float:
        """Age of the oldest device message this lane received and has not acknowledged."""
        return self.link.in_flight.oldest_age()

    def start(self, timeout: float = 15.0) -> None:
        """Start the worker and housekeeper, connect, and wait until the subscriptions hold."""
        self.liveness.reset()
        self.worker.start()
        self.housekeeper.start()
        try:
            self.link.start(wait=timeout)
            if not self.link.wait_subscribed(timeout):
                raise TimeoutError(f"{self.link.client_id}: subscriptions not acknowledged")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop consuming, disconnect, and write what is buffered."""
        self.worker.stop()
        self.link.stop()
        self.housekeeper.stop()

    # -- network thread: hand over to the worker -------------------------------------------

    def _received(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        """Every device message is handed to the worker, dealt with here (throttled), or, if
        anything fails before the hand-off, rejected as `internal` and acknowledged: none is
        left in flight, whatever its payload or whatever the code does with it."""
        received_at = datetime.now(UTC)
        heard: list[str] = []  # the device counted as heard, to be uncounted on failure
        try:
            self._take(message, received_at, heard)
        except Exception:
            log.exception("%s: failed on a message on %s before handing it over",
                          self.link.client_id, message.topic,
                          extra={"payload": bytes(message.payload[:200])})
            for device_id in heard:
                self.liveness.handled(device_id)
            self._unprocessable(message)

    def _take(self, message: mqtt.MQTTMessage, received_at: datetime, heard: list[str]) -> None:
        device_id = None
        # Retained replays come because we subscribed, not because the device spoke.
        if not message.retain:
            try:
                topic = parse_device_topic(message.topic)
            except TopicError:
                topic = None  # the worker rejects it, saying why
            if topic is not None:
                if not self._within_budget(message, topic):
                    return
                device_id = topic.device_id
        if device_id is None:
            self.worker.put(
                lambda: self._handle(message, received_at), give_up=lambda: self._unprocessable(message)
            )
            return
        # The device is heard from now, though the worker may take a while to get to it.
        self.liveness.received(device_id)
        heard.append(device_id)

        def handle() -> None:
            self._handle(message, received_at)
            self.liveness.handled(device_id)

        def give_up() -> None:  # the task failed MAX_ATTEMPTS times: a bug, not the database
            try:
                self._unprocessable(message)
            finally:
                self.liveness.handled(device_id)

        self.worker.put(handle, give_up=give_up)

    def _unprocessable(self, message: mqtt.MQTTMessage) -> None:
        """The gateway failed on a message: tell the device (code `internal`), count it and
        acknowledge it. A retained replay is only acknowledged, like any replay."""
        try:
            device_id = None
            if not message.retain:
                try:
                    device_id = parse_device_topic(message.topic).device_id
                except TopicError:
                    pass
            self.rejections.reject(message, device_id, "internal", INTERNAL_REASON)
        except Exception:
            log.exception("%s: could not reject a message on %s; acknowledging it",
                          self.link.client_id, message.topic)
            self.link.ack(message)

    def _within_budget(self, message: mqtt.MQTTMessage, topic: DeviceTopic) -> bool:
        """The flood gate; an over-budget message is dealt with here, off the worker's queue."""
        verdict = self.flood.admit(topic.device_id, topic.channel, message.payload)
        if verdict is Verdict.PASS:
            return True
        channel = topic.channel.value
        if verdict is Verdict.NEWS:
            THROTTLED.labels(channel, "passed").inc()
            return True
        THROTTLED.labels(channel, "dropped").inc()
        dropped = self.flood.reply_due(topic.device_id)
        gate = self.flood
        reason = (
            f"rate: over the budget of {gate.rate:g} messages/s (burst {gate.burst:g});"
            f" {dropped or 0} dropped since the last reply. Repeats are dropped; a new"
            " kind of event, a change of online and a backlog of old samples still pass"
        )
        self.rejections.throttle(message, topic.device_id, reason, reply=dropped is not None)
        return False

    # -- worker thread ---------------------------------------------------------------------

    def _idle(self) -> float | None:
        statuses = self.liveness.take(idle=self.worker.backlog() == 0)
        if statuses:
            self.liveness.write(statuses, self.worker.attempt)
        return self.liveness.due_in()

    def _handle(self, message: mqtt.MQTTMessage, received_at: datetime) -> None:
        """Check one device message against the registry and the contract, then act on it."""
        try:
            topic = parse_device_topic(message.topic)
        except TopicError as exc:
            return self.rejections.reject(message, None, "topic", f"topic: {exc}")
        device_id, channel = topic.device_id, topic.channel
        if message.retain:
            return self._replayed(message, device_id, channel, received_at)
        MESSAGES.labels(channel.value).inc()
        if channel is DeviceChannel.STATUS:
            return self._status(message, device_id, received_at)
        ref = self.cache.get(device_id)
        if ref is None:
            return self.rejections.unknown_device(message, device_id)
        if self.cache.shard is not None and ref.shard != self.cache.shard:  # an anonymous broker
            return self.rejections.wrong_shard(message, device_id, ref.shard, self.cache.shard)
        if channel is DeviceChannel.TELEMETRY:
            if ref.kind is not DeviceKind.BED:
                return self.rejections.reject(
                    message, device_id, "kind", f"topic: a {ref.kind.value} does not send telemetry"
                )
            samples = fast_samples(message.payload)
            if samples is not None:  # the common case, checked without the models
                self.forward.telemetry_part(ref.id, batch_part(ref.id, ref.resident_id, samples), message)
                return self.liveness.seen(device_id, received_at)
        try:
            payload = validate(channel, message.payload)
        except ContractError as exc:
            return self.rejections.reject(message, device_id, exc.code, exc.reason, exc.event_id)
        if channel is DeviceChannel.EVENTS and payload.type not in EVENTS_BY_KIND[ref.kind]:
            return self.rejections.reject(
                message, device_id, "kind",
                f"type: a {ref.kind.value} does not send {payload.type!r} events", payload.event_id,
            )
        if channel is DeviceChannel.TELEMETRY:
            self.forward.telemetry(ref, payload, message)
        elif channel is DeviceChannel.EVENTS:
            self.forward.event(ref, payload, message, received_at)
        else:  # an ack: dispatch, which sent the command, checks and records it
            self.forward.ack(ref, payload, message, received_at)
        self.liveness.seen(device_id, received_at)

    def _status(self, message: mqtt.MQTTMessage, device_id: str, received_at: datetime) -> None:
        """Statuses go to the next batch, whose statement also finds the device: a connect
        storm costs neither a registry lookup nor a commit per device."""
        try:
            status = validate(DeviceChannel.STATUS, message.payload)
        except ContractError as exc:
            if self.cache.get(device_id) is None:  # an unknown device is told that first
                return self.rejections.unknown_device(message, device_id)
            return self.rejections.reject(message, device_id, exc.code, exc.reason, exc.event_id)
        # Its row then stamps last_seen, unless it is the last will: the broker speaking for a
        # device that is gone.
        self.liveness.status(device_id, status, message, received_at)

    def _replayed(
        self, message: mqtt.MQTTMessage, device_id: str, channel: DeviceChannel,
        received_at: datetime,
    ) -> None:
        """A retained message the broker replays because we (re)subscribed: old news.

        Live messages were handled when they came (the persistent session queues them while
        the gateway is away), so a replay is not a sighting and not worth an error reply. Only
        a retained last will says something reliable: the device is not connected now.
        """
        MESSAGES.labels("retained").inc()
        if channel is DeviceChannel.STATUS:
            try:
                status = validate(channel, message.payload)
            except ContractError:
                status = None
            if status is not None and not status.online:  # unknown devices are skipped then
                return self.liveness.status(device_id, status, message, received_at, replayed=True)
        self.link.ack(message)
