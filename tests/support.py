"""Helpers for tests: waiting on conditions, device clients speaking mqtt-v1."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from homecare.contract import format_ts
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DeviceChannel, device_topic

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll until predicate() is truthy and return it; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@contextmanager
def fresh_database(server_url: str, prefix: str = "homecare_test") -> Iterator[str]:
    """An empty database of its own on the server of `server_url` (its URL), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique(prefix: str) -> str:
    """A random id valid as a device id."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ts(offset_s: float = 0.0) -> str:
    return format_ts(datetime.now(UTC) + timedelta(seconds=offset_s))


class FakeDevice:
    """A real MQTT client acting as a device: its own id and secret, persistent session,
    last will; collects what arrives on its `commands` and `errors` topics."""

    def __init__(self, broker_url: str, device_id: str, secret: str | None = None, subscribe: bool = True):
        self.device_id = device_id
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.errors: queue.Queue[dict[str, Any]] = queue.Queue()
        subs = {}
        if subscribe:
            subs = {
                device_topic(device_id, DeviceChannel.COMMANDS): self._on_command,
                device_topic(device_id, DeviceChannel.ERRORS): self._on_error,
            }
        address = BrokerAddress.parse(broker_url).with_credentials(device_id, secret)
        self.link = MqttLink(
            address, device_id, subscriptions=subs, keepalive=60,
            will=(device_topic(device_id, DeviceChannel.STATUS), b'{"online": false}', 1, True),
        )

    def _on_command(self, client, message) -> None:
        self.commands.put(json.loads(message.payload))

    def _on_error(self, client, message) -> None:
        self.errors.put(json.loads(message.payload))

    def connect(self, status: dict[str, Any] | None = None) -> FakeDevice:
        self.link.start()
        self.publish(DeviceChannel.STATUS, status or {"online": True, "fw": "1.0.0"}, retain=True)
        return self

    def publish(self, channel: DeviceChannel, payload: dict[str, Any] | bytes, qos: int = 1, retain: bool = False):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.link.publish(device_topic(self.device_id, channel), data, qos=qos, retain=retain)
        info.wait_for_publish(10)
        return info

    def press(self, service: str, event_id: str | None = None) -> str:
        event_id = event_id or str(uuid.uuid4())
        event = {"event_id": event_id, "ts": now_ts(), "type": "button.pressed", "service": service}
        self.publish(DeviceChannel.EVENTS, event)
        return event_id

    def ack(self, command_id: str) -> None:
        self.publish(DeviceChannel.ACKS, {"command_id": command_id, "ts": now_ts()})

    def next_command(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            return self.commands.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.device_id}: no command within {timeout}s") from None

    def next_error(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            return self.errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.device_id}: no error reply within {timeout}s") from None

    def close(self) -> None:
        # Leave no retained status behind on a long-lived broker: every gateway a later test
        # starts would replay it (a thousand of them slow each start by seconds).
        if self.link.connected:
            try:
                self.link.publish(device_topic(self.device_id, DeviceChannel.STATUS), b"", qos=1,
                                  retain=True).wait_for_publish(2)
            except (RuntimeError, ValueError):
                pass
        self.link.stop()


def forget_session(broker_url: str, client_id: str) -> None:
    """Drop a stopped client's persistent session: mosquitto would go on queueing its share of
    shared-subscription messages for it, and a later test would never see them."""
    link = MqttLink(BrokerAddress.parse(broker_url), client_id, clean_session=True)
    link.start()
    link.stop()


class LogTap:
    """The internal log as a test sees it: publish as a component would, and read what is stored
    in a stream. Drops the namespace's streams when closed, so the machine's NATS keeps none."""

    def __init__(self, nats_url: str, namespace: str):
        from homecare.log import Log

        self.log = Log(nats_url, f"tap-{uuid.uuid4().hex[:6]}", namespace)
        self.log.start()
        self.subjects = self.log.subjects

    def publish(self, subject: str, payload: bytes) -> None:
        """Store one message and wait for the log's acknowledgement."""
        self.log.publish_wait(subject, payload)

    def messages(self, spec, subject_filter: str | None = None) -> list[Any]:
        """Every message of a stream (optionally of some subjects), oldest first."""
        return self.log.call(self._read(spec, subject_filter), 30)

    def wait_messages(self, spec, count: int, subject_filter: str | None = None, timeout: float = 10.0) -> list[Any]:
        """The stream's messages once there are at least `count` of them."""
        return wait_for(lambda: (found := self.messages(spec, subject_filter)) and len(found) >= count and found,
                        timeout, 0.1, f"{count} messages in {spec.name}")

    def payloads(self, spec, subject_filter: str | None = None) -> list[dict]:
        return [json.loads(m.data) for m in self.messages(spec, subject_filter)]

    async def _read(self, spec, subject_filter):
        from nats.js.errors import NotFoundError

        name = self.log.stream(spec)
        info = await self.log.js.stream_info(name)
        found, seq = [], max(info.state.first_seq, 1)
        if not info.state.messages:
            return found
        while seq <= info.state.last_seq:
            try:
                msg = await self.log.js.get_msg(name, seq=seq, subject=subject_filter or None,
                                                next=bool(subject_filter))
            except NotFoundError:
                break
            found.append(msg)
            seq = msg.seq + 1
        return found

    def close(self) -> None:
        self.log.call(self._drop(), 30)
        self.log.stop()

    async def _drop(self) -> None:
        from homecare.log import streams

        for spec in streams.ALL:
            try:
                await self.log.js.delete_stream(self.log.stream(spec))
            except Exception:  # never created, or gone already
                pass


class SubjectListener:
    """A plain NATS subscriber on some subjects of the log, collecting (subject, JSON payload) as
    they are published: what the gateway forwards, as soon as JetStream has it."""

    def __init__(self, tap: LogTap, *filters: str):
        self._tap = tap
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._subs = [tap.log.call(tap.log.nc.subscribe(f, cb=self._on_message), 10) for f in filters]
        tap.log.call(tap.log.nc.flush(), 10)  # the server has the subscriptions before we go on

    async def _on_message(self, msg) -> None:
        try:
            self.messages.put((msg.subject, json.loads(msg.data)))
        except ValueError:
            self.messages.put((msg.subject, {"raw": msg.data.decode(errors="replace")}))

    def next(self, match: Callable[[str, dict], bool] = lambda s, p: True, timeout: float = 10.0) -> tuple[str, dict]:
        """The next message that matches; fails the test after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching message arrived")
            try:
                subject, payload = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if match(subject, payload):
                return subject, payload

    def pending(self, match: Callable[[str, dict], bool] = lambda s, p: True) -> list[tuple[str, dict]]:
        """Matching messages received and not yet taken."""
        out = []
        while True:
            try:
                subject, payload = self.messages.get_nowait()
            except queue.Empty:
                return out
            if match(subject, payload):
                out.append((subject, payload))

    def close(self) -> None:
        for sub in self._subs:
            try:
                self._tap.log.call(sub.unsubscribe(), 5)
            except Exception:  # the connection is gone already
                pass
