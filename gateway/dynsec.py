"""BrokerAccounts on Mosquitto's dynamic-security plugin: device accounts are created and deleted
over its `$CONTROL/dynamic-security/v1` topic, and take effect at once, without a restart."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from homecare.mqtt import BrokerAddress

from .broker_config import CONTROL_TOPIC, device_acls, device_role_name

log = logging.getLogger(__name__)

RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
NOT_FOUND = ("not found",)  # dynsec's words for deleting what is not there: fine when revoking


class BrokerRefused(RuntimeError):
    """The broker did not carry out an account change."""


class DynsecAccounts:
    """Device accounts on one broker, managed with the admin account (HOMECARE_MQTT_ADMIN_URL;
    with several shards, one of these per shard, see gateway.bootstrap.accounts_for).

    Thread-safe; connects on first use and keeps the connection. Each call returns only once the
    broker has answered, so a provisioning or revocation that returns has taken effect.
    """

    def __init__(self, admin_url: str | BrokerAddress, timeout: float = 10.0):
        # A URL, or an address (one shard's host and port with the admin's credentials).
        self.address = admin_url if isinstance(admin_url, BrokerAddress) else BrokerAddress.parse(admin_url)
        self.timeout = timeout
        self._lock = threading.Lock()  # one exchange at a time
        self._client: mqtt.Client | None = None
        self._ready = threading.Event()
        self._responses: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()

    # -- BrokerAccounts ------------------------------------------------------------------------

    def add_device(self, device_id: str, secret: str) -> None:
        """Create the device's role and client; an orphan of the same name is replaced.

        The registry had no such device (provisioning inserted it), so an account that exists
        already is left over from a provisioning whose transaction rolled back.
        """
        role = device_role_name(device_id)
        self._run(
            [
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": role},
                {"command": "createRole", "rolename": role, "acls": device_acls(device_id)},
                # clientid pins the account to its own client id: no session take-over of another.
                {"command": "createClient", "username": device_id, "password": secret,
                 "clientid": device_id, "roles": [{"rolename": role}]},
            ],
            tolerate={"deleteClient", "deleteRole"},
        )
        log.info("broker account created for %s", device_id, extra={"device_id": device_id})

    def remove_device(self, device_id: str) -> None:
        """Delete the account (the broker disconnects the device at once) and its session."""
        self._run(
            [{"command": "deleteClient", "username": device_id},
             {"command": "deleteRole", "rolename": device_role_name(device_id)}],
            tolerate={"deleteClient", "deleteRole"},
        )
        self._drop_session(device_id)
        log.info("broker account of %s deleted", device_id, extra={"device_id": device_id})

    # -- more of the control API, for operators and tests ---------------------------------------

    def device_exists(self, device_id: str) -> bool:
        responses = self._run([{"command": "getClient", "username": device_id}], tolerate={"getClient"})
        return "error" not in responses[0]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
                self._ready.clear()

    # -- plumbing -------------------------------------------------------------------------------

    def _run(self, commands: list[dict[str, Any]], tolerate: set[str] = frozenset()) -> list[dict]:
        """Send commands in one message and wait for their responses; raise on an error."""
        with self._lock:
            client = self._connect()
            tags = []
            for command in commands:
                command["correlationData"] = uuid.uuid4().hex
                tags.append(command["correlationData"])
            info = client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerRefused(f"could not send to the broker: rc={info.rc}")
            responses = [self._response(tag) for tag in tags]
        for command, response in zip(commands, responses, strict=True):
            error = response.get("error")
            if error and not (command["command"] in tolerate and _is_not_found(error)):
                raise BrokerRefused(f"broker refused {command['command']}: {error}")
        return responses

    def _response(self, tag: str) -> dict[str, Any]:
        with self._answered:
            if not self._answered.wait_for(lambda: tag in self._responses, self.timeout):
                raise BrokerRefused(f"no answer from the broker's account management in {self.timeout}s")
            return self._responses.pop(tag)

    def _connect(self) -> mqtt.Client:
        if self._client is not None and self._ready.is_set():
            return self._client
        if self._client is not None:
            self._client.loop_stop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"homecare-accounts-{uuid.uuid4().hex[:12]}",
            clean_session=True,
        )
        client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        refused: list[str] = []

        def on_connect(c, userdata, flags, reason_code, properties) -> None:
            if reason_code.is_failure:
                refused.append(str(reason_code))
                self._ready.set()
                return
            c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(c, userdata, mid, reason_codes, properties) -> None:
            if any(rc.is_failure for rc in reason_codes):
                refused.append("subscription to the control responses refused")
            self._ready.set()

        def on_disconnect(c, userdata, flags, reason_code, properties) -> None:
            self._ready.clear()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = self._on_message
        client.connect(self.address.host, self.address.port, keepalive=60)
        client.loop_start()
        ok = self._ready.wait(self.timeout)
        if not ok or refused:
            client.loop_stop()
            client.disconnect()
            self._ready.clear()
            raise BrokerRefused(
                f"account management on {self.address.host}:{self.address.port}: "
                f"{refused[0] if refused else 'no connection'}"
            )
        self._client = client
        return client

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload).get("responses", [])
        except ValueError:
            log.error("unreadable answer on %s", message.topic)
            return
        with self._answered:
            for response in responses:
                tag = response.get("correlationData")
                if tag:
                    self._responses[tag] = response
            self._answered.notify_all()

    def _drop_session(self, device_id: str) -> None:
        """Connect once with the device's client id and a clean session: the broker discards the
        session and the commands queued in it (no one may ever collect them)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=True)
        client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        try:
            client.connect(self.address.host, self.address.port, keepalive=10)
            client.loop_start()
            client.disconnect()
            client.loop_stop()
        except OSError as exc:
            log.warning("could not drop the broker session of %s: %s", device_id, exc)


def _is_not_found(error: str) -> bool:
    return any(words in error.lower() for words in NOT_FOUND)
