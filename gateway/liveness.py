"""Device liveness: status messages, last_seen stamps (batched), and silent beds."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from homecare.contract import Status
from homecare.mqtt import MqttLink

from . import edge_store
from .announce import Announcer
from .commands import Commands
from .registry import DeviceRef

log = logging.getLogger(__name__)


class Liveness:
    """Tracks whether devices are online, offline or silent, and announces each transition."""

    def __init__(self, link: MqttLink, pool: ConnectionPool, announcer: Announcer, commands: Commands):
        self._link = link
        self._pool = pool
        self._announcer = announcer
        self._commands = commands  # commands held for a device's first connection
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}

    def seen(self, device_id: str, at: datetime) -> None:
        """Note that a device spoke; written to the database by the next flush, not now."""
        with self._lock:
            previous = self._seen.get(device_id)
            if previous is None or at > previous:
                self._seen[device_id] = at

    def status(self, ref: DeviceRef, status: Status, message: mqtt.MQTTMessage, at: datetime) -> None:
        """Apply a status message; acknowledge it once its effect is durable and announced."""
        held = []
        with self._pool.connection() as conn:
            change = edge_store.record_status(
                conn, ref.id, online=status.online, fw=status.fw, battery=status.battery,
                rssi=status.rssi, at=at,
            )
            if change is not None and change.state == "online":
                held = self._commands.release(conn, [ref.id])
        self._commands.deliver(held)
        if change is None:
            self._link.ack(message)
        else:
            self._announcer.device_state(change, then=lambda: self._link.ack(message))

    def flush(self, pool: ConnectionPool) -> None:
        """Write buffered last_seen stamps in one statement; announce devices that came back."""
        with self._lock:
            seen, self._seen = self._seen, {}
        if not seen:
            return
        try:
            with pool.connection() as conn:
                revived = edge_store.touch(conn, seen)
                held = self._commands.release(conn, [s.device_id for s in revived])
        except Exception:
            with self._lock:  # keep the stamps for the next flush
                for device_id, at in seen.items():
                    previous = self._seen.get(device_id)
                    if previous is None or at > previous:
                        self._seen[device_id] = at
            raise
        self._commands.deliver(held)
        for state in revived:
            self._announcer.device_state(state)

    def sweep(self, pool: ConnectionPool, intervals: int, min_s: int) -> None:
        """Mark beds that stopped reporting as silent."""
        with pool.connection() as conn:
            silent = edge_store.mark_silent(conn, intervals, min_s)
        for state in silent:
            log.warning("bed %s fell silent", state.device_id, extra={"device_id": state.device_id})
            self._announcer.device_state(state)
