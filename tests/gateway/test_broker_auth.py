"""Device identity and permissions enforced by the broker itself: a Mosquitto of this module's
own, with the dynamic-security plugin, authentication on, on a free port.

The services talk through the internal log (NATS JetStream) now; on the broker there is only the
devices' traffic: what they send, which the gateway reads, and what they receive, their commands
(from dispatch) and `errors` replies; each service account may do only its part of that."""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.bootstrap import build
from gateway.dynsec import DynsecAccounts
from homecare.contract import DeviceKind
from homecare.log import streams
from homecare.mqtt import BrokerAddress
from homecare.settings import Settings
from homecare.topics import DeviceChannel, device_topic
from launch import embedded
from tests.support import FakeDevice, now_ts, unique, wait_for

pytestmark = pytest.mark.skipif(
    not (embedded.mosquitto_available() and embedded.dynsec_plugin()),
    reason="needs mosquitto with its dynamic-security plugin",
)

QUIET_S = 1.0  # how long a message that must not arrive is waited for

# The internal topics the services used before the log took their traffic and dispatch published
# commands itself: nobody may read or write them on the broker any more.
INTERNAL_PREFIX = "homecare/internal/v1"
RETIRED = tuple(f"{INTERNAL_PREFIX}/{name}" for name in (
    "telemetry", "events/button.pressed", "events/fall.suspected", "device-state", "command-state",
    "open-request", "commands",
))
ORDERS = f"{INTERNAL_PREFIX}/commands"  # the command orders dispatch sent the gateway, retired too
RETIRED_FILTERS = (f"{INTERNAL_PREFIX}/events/+", f"{INTERNAL_PREFIX}/#", *RETIRED)


@pytest.fixture(scope="module")
def broker() -> Iterator[embedded.Embedded]:
    server = embedded.start_mosquitto(dynsec=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accounts(broker) -> Iterator[DynsecAccounts]:
    manager = DynsecAccounts(broker.admin_url)
    yield manager
    manager.close()


class Probe:
    """A bare paho client that records what the broker answers and delivers."""

    def __init__(self, broker, username: str | None, password: str | None, client_id: str | None = None):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or unique("probe"), clean_session=True
        )
        if username:
            self.client.username_pw_set(username, password)
        self.connack: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        address = BrokerAddress.parse(broker.url)
        self.client.reconnect_delay_set(60, 60)  # no quick automatic reconnect in these tests
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.accepted = not self.connack.get(timeout=10).is_failure

    def subscribe(self, *filters: str) -> list[bool]:
        """Whether the broker granted each filter."""
        self.client.subscribe([(f, 1) for f in filters])
        return [not rc.is_failure for rc in self.subacks.get(timeout=10)]

    def publish(self, topic: str, payload: bytes = b"{}") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def received(self, timeout: float = QUIET_S) -> list[tuple[str, bytes]]:
        out, deadline = [], time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def spy_account(accounts) -> tuple[str, str]:
    """An account of the tests only that may read every topic: it sees whatever a publisher's
    role let through, so a publish it never sees was refused by the broker."""
    username, password = unique("spy"), unique("s")
    accounts._run([
        {"command": "createRole", "rolename": username,
         "acls": [{"acltype": "subscribePattern", "topic": "#", "allow": True, "priority": 0}]},
        {"command": "createClient", "username": username, "password": password,
         "roles": [{"rolename": username}]},
    ])
    return username, password


@pytest.fixture
def probes(broker) -> Iterator:
    made: list[Probe] = []

    def make(username, password, client_id=None) -> Probe:
        made.append(Probe(broker, username, password, client_id))
        return made[-1]

    yield make
    for probe in made:
        probe.close()


def _service(broker, probes, name: str) -> Probe:
    username, password = broker.accounts[name]
    return probes(username, password)


def _device(accounts, probes, prefix: str = "bed") -> tuple[str, str, Probe]:
    device_id, secret = unique(prefix), f"s-{unique('x')}"
    accounts.add_device(device_id, secret)
    return device_id, secret, probes(device_id, secret, client_id=device_id)


def test_without_the_right_secret_nobody_connects(broker, accounts, probes):
    device_id, secret, device = _device(accounts, probes)
    assert device.accepted
    assert not probes(device_id, "wrong-secret", client_id=device_id).accepted
    assert not probes(None, None).accepted  # anonymous
    assert not probes(unique("bed"), secret).accepted  # a secret of another id
    # an account is pinned to its client id: no take-over of another device's session
    other_id, _, _ = _device(accounts, probes)
    assert not probes(device_id, secret, client_id=other_id).accepted


def test_a_device_publishes_only_its_own_topics(broker, accounts, probes):
    a_id, _, a = _device(accounts, probes)
    b_id, _, b = _device(accounts, probes)
    gateway = _service(broker, probes, "gateway")
    b_events, a_events = device_topic(b_id, DeviceChannel.EVENTS), device_topic(a_id, DeviceChannel.EVENTS)
    assert gateway.subscribe(b_events, a_events) == [True, True]

    a.publish(device_topic(b_id, DeviceChannel.EVENTS), b'{"forged": true}')
    a.publish(device_topic(a_id, DeviceChannel.EVENTS), b'{"own": true}')
    b.publish(device_topic(b_id, DeviceChannel.EVENTS), b'{"own": true}')
    got = gateway.received()
    assert sorted(t for t, _ in got) == sorted(
        [device_topic(a_id, DeviceChannel.EVENTS), device_topic(b_id, DeviceChannel.EVENTS)]
    )
    assert all(json.loads(p) == {"own": True} for _, p in got)  # the forgery never arrived

    # nor on channels a device only listens to
    assert a.subscribe(device_topic(a_id, DeviceChannel.COMMANDS)) == [True]
    a.publish(device_topic(a_id, DeviceChannel.COMMANDS), b'{"command_id": "self-made"}')
    a.publish(device_topic(a_id, DeviceChannel.ERRORS), b'{"reason": "self-made"}')
    assert gateway.received() == [] and a.received() == []


def test_a_device_reads_only_its_own_commands_and_errors(broker, accounts, probes):
    a_id, _, a = _device(accounts, probes)
    b_id, _, b = _device(accounts, probes)
    assert a.subscribe(
        device_topic(a_id, DeviceChannel.COMMANDS), device_topic(a_id, DeviceChannel.ERRORS),
        device_topic(b_id, DeviceChannel.COMMANDS), device_topic(b_id, DeviceChannel.ERRORS),
        "homecare/v1/devices/+/commands", "#", ORDERS,
    ) == [True, True, False, False, False, False, False]
    assert b.subscribe(device_topic(b_id, DeviceChannel.COMMANDS)) == [True]

    dispatch = _service(broker, probes, "dispatch")
    dispatch.publish(device_topic(b_id, DeviceChannel.COMMANDS), b'{"command_id": "for-b"}')
    dispatch.publish(device_topic(a_id, DeviceChannel.COMMANDS), b'{"command_id": "for-a"}')
    assert [json.loads(p)["command_id"] for _, p in a.received()] == ["for-a"]
    assert [json.loads(p)["command_id"] for _, p in b.received()] == ["for-b"]


def test_a_revoked_device_is_disconnected_and_refused(broker, accounts, probes):
    device_id, secret, device = _device(accounts, probes)
    assert device.accepted and accounts.device_exists(device_id)
    accounts.remove_device(device_id)
    assert device.disconnects.get(timeout=5).is_failure  # dropped by the broker at once
    assert not accounts.device_exists(device_id)
    assert not probes(device_id, secret, client_id=device_id).accepted
    accounts.remove_device(device_id)  # revoking twice is harmless


def test_provisioning_again_replaces_an_orphan_account(broker, accounts, probes):
    device_id = unique("btn")
    accounts.add_device(device_id, "first-secret")
    accounts.add_device(device_id, "second-secret")  # e.g. the first provisioning rolled back
    assert not probes(device_id, "first-secret", client_id=device_id).accepted
    assert probes(device_id, "second-secret", client_id=device_id).accepted


def test_service_accounts_have_least_privilege(broker, accounts, probes, spy_account):
    device_id, _, device = _device(accounts, probes)
    assert device.subscribe(device_topic(device_id, DeviceChannel.COMMANDS)) == [True]
    telemetry = _service(broker, probes, "telemetry")
    dispatch = _service(broker, probes, "dispatch")
    gateway = _service(broker, probes, "gateway")
    admin_address = BrokerAddress.parse(broker.admin_url)
    admin = probes(admin_address.username, admin_address.password)
    spy = probes(*spy_account)
    assert spy.subscribe("#") == [True]

    # what the gateway needs, plainly and through shared subscriptions as replicas run
    assert gateway.subscribe("$share/gateway/homecare/v1/devices/+/telemetry", "homecare/v1/devices/+/events",
                             "$share/gateway/homecare/v1/devices/+/acks", "homecare/v1/devices/+/status") == [True] * 4
    # the retired internal topics are read by no one, whether plainly or shared
    for name, service in (("gateway", gateway), ("telemetry", telemetry), ("dispatch", dispatch)):
        filters = [*RETIRED_FILTERS, *(f"$share/{name}/{f}" for f in RETIRED_FILTERS)]
        assert service.subscribe(*filters) == [False] * len(filters), name
    # only the gateway reads device topics; telemetry reads nothing at all, dispatch only sends;
    # the gateway does not read what devices are sent
    assert telemetry.subscribe("homecare/v1/devices/+/telemetry", "#") == [False] * 2
    assert dispatch.subscribe("homecare/v1/devices/+/acks", "$share/dispatch/homecare/v1/devices/+/events",
                              "homecare/v1/devices/#") == [False] * 3
    assert gateway.subscribe("homecare/v1/devices/+/commands", "homecare/#") == [False, False]
    assert admin.subscribe("homecare/#", "$share/x/homecare/#") == [False, False]
    assert gateway.subscribe("$CONTROL/dynamic-security/v1/response") == [False]

    # what gets through (the spy reads everything): dispatch's command and its reply to a bad ack,
    # the gateway's reply to a rejected message
    commands, errors = device_topic(device_id, DeviceChannel.COMMANDS), device_topic(device_id, DeviceChannel.ERRORS)
    dispatch.publish(commands, b'{"command_id": "d"}')
    dispatch.publish(errors, b'{"reason": "dispatch"}')
    gateway.publish(errors, b'{"reason": "gateway"}')
    # and what does not: no one else sends commands (the gateway no longer relays them), only the
    # gateway and dispatch speak to devices, nobody publishes on the retired topics, the admin
    # sends nothing
    for probe in (gateway, telemetry, admin):
        probe.publish(commands, b'{"command_id": "forged"}')
    for probe in (telemetry, admin):
        probe.publish(errors, b'{"reason": "forged"}')
    for probe in (gateway, telemetry, dispatch):
        for topic in RETIRED:
            probe.publish(topic, b"{}")
    assert sorted(spy.received()) == sorted(
        [(commands, b'{"command_id": "d"}'), (errors, b'{"reason": "dispatch"}'), (errors, b'{"reason": "gateway"}')])
    assert device.received() == [(commands, b'{"command_id": "d"}')]
    # and no service can manage accounts
    gateway.publish("$CONTROL/dynamic-security/v1", json.dumps(
        {"commands": [{"command": "createClient", "username": "intruder", "password": "x"}]}).encode())
    time.sleep(0.3)
    assert not accounts.device_exists("intruder")


def test_the_gateway_runs_on_its_own_account_and_provisions_devices(
    broker, accounts, pool, database_url, resident_id, instance, probes, log_tap, log_listener
):
    settings = Settings(
        mqtt_url=broker.url, database_url=database_url, instance=instance,
        mqtt_accounts=broker.accounts, mqtt_admin_url=broker.admin_url,
    ).for_component("gateway")
    gateway = build(settings, pool)
    assert isinstance(gateway.admin.accounts, DynsecAccounts)
    events = log_listener(log_tap.subjects.events_of("button"))
    acks = log_listener(log_tap.subjects.of_stream("acks"))
    gateway.start()
    try:
        with pool.connection() as conn:
            device, secret = gateway.admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
        button = FakeDevice(broker.url, device.id, secret).connect()
        assert button.link.wait_subscribed(10)
        # the gateway's account reads the device's press, which goes on into the log
        event_id = button.press("meal")
        subject, payload = events.next(lambda s, p: p["event_id"] == event_id)
        assert subject == log_tap.subjects.event("button.pressed", device.id)
        assert payload["device_id"] == device.id

        # a reply on errors reaches the device through the gateway's account
        button.publish(DeviceChannel.EVENTS, {"event_id": "e1", "ts": now_ts(), "type": "nope"})
        assert "type" in button.next_error()["reason"]

        # a command from dispatch's account reaches the device, whose ack the gateway's account
        # reads and forwards into the log
        dispatch = _service(broker, probes, "dispatch")
        command_id = unique("c")
        dispatch.publish(device_topic(device.id, DeviceChannel.COMMANDS), json.dumps({
            "command_id": command_id, "type": "request.acknowledged", "request_id": "r-1", "service": "meal",
        }).encode())
        assert button.next_command()["command_id"] == command_id
        button.ack(command_id)
        subject, ack = acks.next(lambda s, p: p["command_id"] == command_id)
        assert subject == log_tap.subjects.ack(device.id) and ack["device_id"] == device.id

        with pool.connection() as conn:
            gateway.admin.revoke(conn, device.id)
        wait_for(lambda: not button.link.connected, timeout=5, what="revoked device dropped")
        assert not Probe(broker, device.id, secret, client_id=device.id).accepted
        button.close()
    finally:
        gateway.stop()
    assert [p["event_id"] for p in log_tap.payloads(streams.EVENTS)] == [event_id]


def test_embedded_infrastructure_carries_each_components_account(database_url, tmp_path):
    from launch.infra import resolve

    # mqtt_url empty on purpose: this is the embedded path, even where CI configures a broker.
    settings = Settings(database_url=database_url, mqtt_url="", embedded_broker="mosquitto", data_dir=str(tmp_path))
    infra = resolve(settings, broker_auth=True)
    try:
        resolved = infra.settings
        assert set(resolved.mqtt_accounts) == {"gateway", "telemetry", "dispatch"}
        gateway = resolved.for_component("gateway")
        assert gateway.mqtt_service_username == "homecare-gateway"
        assert resolved.for_component("console") is resolved  # no account: unchanged
        manager = DynsecAccounts(resolved.mqtt_admin_url)
        manager.add_device("bed-kept-0001", "kept-secret")
        manager.close()
    finally:
        infra.stop()
    # a data_dir keeps the accounts, devices' and services' alike, across a restart
    again = resolve(settings, broker_auth=True)
    try:
        assert again.settings.mqtt_accounts == resolved.mqtt_accounts
        broker = again.embedded[0]
        kept = Probe(broker, "bed-kept-0001", "kept-secret", client_id="bed-kept-0001")
        anonymous = Probe(broker, None, None)
        kept.close(), anonymous.close()
        assert kept.accepted and not anonymous.accepted
    finally:
        again.stop()


@pytest.mark.parametrize("component", ["telemetry", "dispatch"])
def test_each_service_runs_on_its_own_least_privilege_account(
    broker, pool, database_url, instance, component, caplog
):
    """The roles fit what the services really do on the broker: each starts and is ready on its
    own account, and nothing it asks is refused (telemetry asks nothing: it uses only the log;
    dispatch connects to send command orders)."""
    from launch.assemble import build_component

    settings = Settings(
        mqtt_url=broker.url, database_url=database_url, instance=instance,
        mqtt_accounts=broker.accounts, mqtt_admin_url=broker.admin_url,
    ).for_component(component)
    assert settings.mqtt_service_username == f"homecare-{component}"
    service = build_component(component, settings, pool)
    with caplog.at_level(logging.ERROR):
        service.start()
        try:
            wait_for(lambda: all(check() for check in service.checks().values()), what="ready")
            time.sleep(0.5)  # SUBACKs
        finally:
            service.stop()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == []
