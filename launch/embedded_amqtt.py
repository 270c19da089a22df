"""In-process MQTT broker (amqtt) for machines without mosquitto on PATH.

The broker runs in a daemon thread with its own asyncio event loop, on 127.0.0.1, and lets any
client in. It is a development and test fallback; mosquitto is the broker the platform is built
for. Limits of amqtt that the platform has to live with:

- MQTT 3.1.1 only (a v5 CONNECT is refused).
- No shared subscriptions: `$share/<group>/<filter>` is taken as a literal filter and matches
  nothing, so the platform runs with `HOMECARE_MQTT_SHARED_SUBSCRIPTIONS=false` on it (every
  replica then gets every message; run one replica per consumer).
- State lives in memory: retained messages and persistent sessions are lost when this broker
  stops. `data_dir` is accepted for parity with `start_mosquitto` and not used.
- Messages are delivered at the subscription's QoS, not min(publish QoS, subscription QoS),
  and a last will at the will's QoS; MQTT allows neither, but no client here is hurt by a
  message arriving more reliably than asked.

amqtt 0.12 behaviours this module corrects (in `_Broker` and `_Handler`, each one small):

1. With anonymous access every session is flagged anonymous, and amqtt then neither queues QoS 1
   messages for a disconnected persistent session nor keeps the session at all. `_OpenAuth`
   admits every client without that flag.
2. An outgoing QoS 1 message left the session's in-flight store after 5 s without PUBACK, or
   when the connection dropped, so an unacknowledged message (manual acks) was never
   redelivered. It now stays in flight until its PUBACK, late or not, and is resent with DUP
   when the session reconnects [MQTT-4.4.0-1].
3. Messages queued for a disconnected session were delivered with the RETAIN flag set; they now
   arrive with RETAIN 0, as live messages do [MQTT-3.3.1-9].
4. On every CONNECT a client was sent the retained messages matching every filter of every
   client, its own or not; now retained messages go out for a SUBSCRIBE only [MQTT-3.3.1-6].
5. Keep-alive was not enforced, so a half-open connection never published its last will; a
   client silent for 1.5 x its keep-alive is now disconnected and its will sent [MQTT-3.1.2-24].
6. When a client reconnected with the id of a connection the broker still held open (session
   take-over), the old connection's loop later marked the session disconnected and the new
   connection received nothing more. The old connection is now ended first, without its last
   will (the client is back; mosquitto does the same).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import socket
import threading
import time
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import OUTGOING, Session

from launch.embedded import Embedded, free_port

log = logging.getLogger(__name__)

# How long one delivery attempt waits for PUBACK before it stops waiting; the message stays in
# flight. Below the 10 s amqtt allows each redelivery when a session reconnects.
PUBACK_WAIT_S = 5.0
# How long a take-over waits for the old connection's loop (busy at most about PUBACK_WAIT_S).
TAKEOVER_WAIT_S = 15.0
# Session attribute: the connection's message loop runs (CONNECT is done).
_SERVING = "homecare.serving"


class _OpenAuth(BaseAuthPlugin):
    """Admit every client as an identified one, so that its persistent session is kept."""

    async def authenticate(self, *, session: Session) -> bool:
        return True


class _Handler(BrokerProtocolHandler):
    """amqtt's per-connection protocol handler, with QoS 1 messages kept in flight until acked
    and keep-alive enforced."""

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        if app_message.direction != OUTGOING or self.session is None:
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        self.session.inflight_out[packet_id] = app_message
        packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        await self._send_packet(packet)
        app_message.publish_packet = packet
        waiter: asyncio.Future[PubackPacket] = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter
        try:
            app_message.puback_packet = await asyncio.wait_for(waiter, PUBACK_WAIT_S)
        except TimeoutError:
            return  # still in flight: a late PUBACK settles it, a reconnect resends it
        finally:
            self._puback_waiters.pop(packet_id, None)
        self.session.inflight_out.pop(packet_id, None)
        # Cancellation (the connection dropped) propagates and leaves the message in flight.

    async def handle_puback(self, puback: PubackPacket) -> None:
        waiter = self._puback_waiters.get(puback.packet_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(puback)
        elif self.session is not None:
            self.session.inflight_out.pop(puback.packet_id, None)

    def handle_read_timeout(self) -> None:
        # Nothing read for the whole keep-alive window: the client is gone. Ending the
        # connection as an abnormal disconnect makes the broker publish the last will.
        if self._disconnect_waiter is not None and not self._disconnect_waiter.done():
            self._disconnect_waiter.set_result(None)


class _Broker(Broker):
    """amqtt's broker with the corrections listed in the module docstring."""

    async def _handle_client_session(self, reader, writer, client_session, handler, *args):  # type: ignore[override]
        # amqtt builds handlers through a module-level name; retype this one in place (it adds
        # behaviour, no state).
        handler.__class__ = _Handler
        client_session.attributes[_SERVING] = False
        if client_session.keep_alive > 0:
            # amqtt reads nothing for keep_alive seconds before timing out; MQTT allows 1.5x.
            client_session.keep_alive = math.ceil(client_session.keep_alive * 1.5)
        if client_session.transitions.is_connected():
            await self._end_previous_connection(client_session)
        await super()._handle_client_session(reader, writer, client_session, handler, *args)

    async def _end_previous_connection(self, session: Session) -> None:
        """Session take-over [MQTT-3.1.4-2]: close the old connection and let its loop finish.

        amqtt's own take-over lets the old connection's loop run on, and that loop later marks
        the shared session disconnected under the new connection, which then gets nothing.
        """
        _, old = self._sessions.get(session.client_id or "", (None, None))
        # The client is back, not gone: no last will (as mosquitto does for MQTT 3.1.1).
        will_flag, session.will_flag = session.will_flag, False
        try:
            if old is not None:
                await old.handle_connection_closed()
            deadline = time.monotonic() + TAKEOVER_WAIT_S
            while session.transitions.is_connected() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            session.will_flag = will_flag

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        tasks = []
        while handler is not None and not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                )
            )
        if tasks:
            await asyncio.wait(tasks)

    async def _client_message_loop(self, client_session: Session, handler: Any) -> None:
        client_session.attributes[_SERVING] = True  # from here on, SUBSCRIBE packets are handled
        await super()._client_message_loop(client_session, handler)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        # amqtt also calls this at CONNECT, for every filter of every client; MQTT sends
        # retained messages for a SUBSCRIBE only, which is handled in the message loop.
        if session.attributes.get(_SERVING):
            await super()._publish_retained_messages_for_subscription(subscription, session)


def _config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "timeout_disconnect_delay": 0,
        # Only our auth plugin: amqtt's default set adds event and packet loggers and $SYS.
        "plugins": {f"{__name__}._OpenAuth": {}},
    }


def _answers_mqtt(port: int, timeout: float = 15.0) -> None:
    """Block until the broker accepts an MQTT CONNECT (a bare TCP probe makes amqtt log an
    error), or raise TimeoutError."""
    client_id = b"homecare-ready-probe"
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(client_id).to_bytes(2, "big") + client_id
    connect = bytes([0x10, len(body)]) + body
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(connect)
                if sock.recv(4) == b"\x20\x02\x00\x00":  # CONNACK, accepted
                    sock.sendall(b"\xe0\x00")  # DISCONNECT
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"amqtt does not answer MQTT on 127.0.0.1:{port} after {timeout}s")


def start_amqtt(data_dir: str | Path | None = None, port: int | None = None) -> Embedded:
    """An amqtt broker on 127.0.0.1 (a free port when None), in a daemon thread."""
    del data_dir  # in-memory broker: see the module docstring
    for noisy in ("amqtt", "transitions"):  # unless a level was chosen for them already
        if logging.getLogger(noisy).level == logging.NOTSET:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    port = port or free_port()
    started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = (
        concurrent.futures.Future()
    )

    async def serve() -> None:
        broker = _Broker(_config(port), loop=asyncio.get_running_loop())
        await broker.start()
        stopping = asyncio.Event()
        started.set_result((asyncio.get_running_loop(), stopping))
        await stopping.wait()
        await broker.shutdown()

    def run() -> None:
        try:
            asyncio.run(serve())  # also cancels what is left of client tasks on the way out
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            else:
                log.exception("amqtt broker on port %s failed", port)

    thread = threading.Thread(target=run, name=f"amqtt-{port}", daemon=True)
    thread.start()
    loop, stopping = started.result(30)

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(stopping.set)
            thread.join(30)
            if thread.is_alive():
                log.warning("amqtt broker on port %s did not stop within 30 s", port)

    try:
        _answers_mqtt(port)
    except TimeoutError:
        stop()
        raise
    log.info("embedded amqtt started", extra={"port": port})
    return Embedded("amqtt", f"mqtt://127.0.0.1:{port}", stop)
