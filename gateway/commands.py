"""Commands to devices: orders from services are stored, delivered QoS 1, acknowledged, expired."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool
from pydantic import TypeAdapter, ValidationError

from homecare.contract import Ack, Command
from homecare.contract.validate import explain
from homecare.internal import CommandOrder
from homecare.mqtt import SplitLink
from homecare.topics import DeviceChannel, device_topic

from . import command_store, edge_store
from .announce import Announcer
from .cache import DeviceCache
from .metrics import COMMANDS_HELD
from .registry import DeviceRef
from .rejections import Rejections

log = logging.getLogger(__name__)

_COMMAND = TypeAdapter(Command)
Submit = Callable[[Callable[[], None]], None]


class Commands:
    """Delivers commands into devices' persistent sessions and tracks what became of them."""

    def __init__(
        self, link: SplitLink, pool: ConnectionPool, cache: DeviceCache, announcer: Announcer,
        rejections: Rejections, submit: Submit,
    ):
        self._link = link
        self._pool = pool
        self._cache = cache
        self._announcer = announcer
        self._rejections = rejections
        self._submit = submit  # runs a follow-up on the worker thread, off the network thread

    def order(self, message: mqtt.MQTTMessage) -> None:
        """Handle a CommandOrder from Internal.COMMANDS."""
        try:
            order = CommandOrder.model_validate_json(message.payload)
            command = _COMMAND.validate_python(order.command)
        except ValidationError as exc:
            # A bug in the ordering service: redelivery would not fix it, so drop it loudly.
            log.error("dropping a malformed command order: %s", explain(exc),
                      extra={"payload": bytes(message.payload[:500])})
            return self._link.ack(message)
        ref = self._cache.get(order.device_id)
        if ref is None:
            log.warning("dropping command %s for unknown or revoked device %s",
                        command.command_id, order.device_id)
            return self._link.ack(message)
        body = command.model_dump(mode="json", exclude_none=True)
        held = False
        with self._pool.connection() as conn:
            stored = command_store.store(conn, ref.id, body, order.deadline_s)
            current = None if stored.state == "queued" else command_store.current_state(conn, stored.command_id)
            if stored.device_id == ref.id and stored.state == "queued":
                held = stored.held or command_store.hold_if_never_seen(conn, stored.command_id, ref.id)
        if stored.device_id != ref.id:
            log.error("dropping command %s for %s: that command id belongs to device %s",
                      stored.command_id, ref.id, stored.device_id)
            return self._link.ack(message)
        if current is not None:  # a redelivered order: say again where it stands
            return self._announcer.command_state(current, then=lambda: self._link.ack(message))
        if held:  # the device has no broker session yet: it gets the command when it connects
            if stored.inserted:
                COMMANDS_HELD.inc()
                log.info("command %s held until %s first connects", stored.command_id, ref.id,
                         extra={"command_id": stored.command_id, "device_id": ref.id})
            return self._link.ack(message)
        self._publish(command_store.Deliverable(stored.command_id, ref.id, stored.payload), message)

    def _publish(self, command: command_store.Deliverable, order: mqtt.MQTTMessage | None) -> None:
        self._link.publish(
            device_topic(command.device_id, DeviceChannel.COMMANDS),
            json.dumps(command.payload).encode(), qos=1,
            on_done=lambda: self._submit(lambda: self._sent(command.command_id, order)),
        )

    def release(self, conn, device_ids: list[str]) -> list[command_store.Deliverable]:
        """In the transaction that brings devices online: take their held commands."""
        return command_store.release_held(conn, device_ids)

    def deliver(self, commands: list[command_store.Deliverable]) -> None:
        """After that transaction commits: publish them into the devices' sessions."""
        for command in commands:
            log.info("sending held command %s to %s", command.command_id, command.device_id,
                     extra={"command_id": command.command_id, "device_id": command.device_id})
            self._publish(command, None)

    def _sent(self, command_id: str, order: mqtt.MQTTMessage | None) -> None:
        """The broker holds the command for the device: record it, announce it, ack the order."""
        with self._pool.connection() as conn:
            state = command_store.mark_sent(conn, command_id)

        def done() -> None:
            if order is not None:
                self._link.ack(order)

        if state is None:  # acknowledged or expired meanwhile; that was announced on its own
            return done()
        self._announcer.command_state(state, then=done)

    def ack(self, ref: DeviceRef, ack: Ack, message: mqtt.MQTTMessage) -> bool:
        """A device confirms it showed or applied a command; False when the ack was rejected."""
        with self._pool.connection() as conn:
            result = command_store.acknowledge(conn, ref.id, ack.command_id, ack.ts)
            if result is not None and result.changed:
                interval = result.payload.get("report_interval_s")
                if result.payload.get("type") == "config" and interval:
                    edge_store.set_report_interval(conn, ref.id, interval)
        if result is None:
            self._rejections.reject(
                message, ref.id, "unknown_command",
                f"command_id: {ack.command_id!r} is not a command sent to {ref.id}",
            )
            return False
        if result.changed:
            self._announcer.command_state(result.state, then=lambda: self._link.ack(message))
        else:  # a repeated ack
            self._link.ack(message)
        return True

    def sweep(self, pool: ConnectionPool, resend_after_s: int = 30) -> None:
        """Expire commands past their deadline; publish again those whose publish was lost."""
        with pool.connection() as conn:
            expired = command_store.expire_overdue(conn)
            unsent = command_store.unsent(conn, resend_after_s)
        if unsent:
            log.info("publishing %d queued commands again", len(unsent))
        for command in unsent:
            self._publish(command, None)
        for state in expired:
            log.warning("command %s to %s expired unacknowledged", state.command_id, state.device_id,
                        extra={"command_id": state.command_id, "device_id": state.device_id})
            self._announcer.command_state(state)
