"""Broker shards on real brokers and the real database: where provisioning places a device, the
URL it is told, its account on its own shard's broker only, a gateway that bridges one shard and
refuses a device of another, and the migration of a database from before shards.

Shard names are made per test, so the devices other tests placed in the session's database do
not count in a placement asserted here."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from gateway import registry
from gateway.accounts import AnonymousBroker
from gateway.api import devices_router
from gateway.bootstrap import accounts_for, build
from gateway.broker_config import write_dynsec_file
from gateway.dynsec import DynsecAccounts
from gateway.service import DeviceAdmin
from gateway.settings import GatewaySettings
from homecare.api.app import build_app
from homecare.auth import Role, create_user
from homecare.contract import DeviceKind
from homecare.db import migrate
from homecare.log import streams
from homecare.mqtt import BrokerAddress
from homecare.residents.store import Location, NewResident, enrol
from homecare.settings import Settings
from homecare.shards import ShardError, Shards, first_name, without_credentials
from launch import embedded
from tests.support import FakeDevice, unique, wait_for

from .conftest import device_row


def _names(*suffixes: str) -> list[str]:
    """Shard names of this test only, in sort order of the suffixes."""
    tag = uuid.uuid4().hex[:8]
    return [f"t{tag}-{s}" for s in suffixes]


def _shards(urls: dict[str, str], public: dict[str, str] | None = None) -> Shards:
    return Shards.parse(",".join(f"{n}={u}" for n, u in urls.items()),
                        ",".join(f"{n}={u}" for n, u in (public or {}).items()), "")


@pytest.fixture(scope="module")
def private_brokers() -> Iterator[tuple[embedded.Embedded, embedded.Embedded]]:
    """Two anonymous mosquittos of this module's own, on free ports: two shards that no gateway
    of another test run (on the machine's broker) answers devices on."""
    if not embedded.mosquitto_available():
        pytest.skip("needs mosquitto")
    first = embedded.start_mosquitto()
    try:
        second = embedded.start_mosquitto()
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


# -- placement --------------------------------------------------------------------------------


def test_a_new_device_goes_to_the_shard_with_fewest_active_devices_and_stays_there(
    pool, resident_id, broker_url
):
    a, b, c = _names("a", "b", "c")
    admin = DeviceAdmin(AnonymousBroker(), shards=_shards({a: broker_url, b: broker_url}))

    def provision(admin: DeviceAdmin) -> registry.Device:
        with pool.connection() as conn:
            return admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)[0]

    # ties go to the first name; then the emptier shard
    first = [provision(admin) for _ in range(4)]
    assert [d.shard for d in first] == [a, b, a, b]
    # a revoked device no longer counts: a has one active, b two
    with pool.connection() as conn:
        admin.revoke(conn, first[0].id)
    assert provision(admin).shard == a

    # a shard added later takes the new devices until it has caught up (a 2, b 2, c 0)
    grown = DeviceAdmin(AnonymousBroker(), shards=_shards({a: broker_url, b: broker_url, c: broker_url}))
    assert [provision(grown).shard for _ in range(3)] == [c, c, a]
    # and the devices placed before keep their shard
    with pool.connection() as conn:
        assert [registry.get(conn, d.id).shard for d in first] == [a, b, a, b]
        assert registry.lookup(conn, first[1].id).shard == b


# -- the URL a device is told -------------------------------------------------------------------


def test_provisioning_answers_with_the_public_url_of_the_devices_shard(pool, resident_id):
    a, b = _names("a", "b")
    shards = _shards({a: "mqtt://homecare-gateway:pw@10.1.0.5:1883", b: "mqtt://10.1.0.6:1884"},
                     public={b: "mqtts://broker-b.care.example:8883"})
    app = build_app("shards-test", pool, [devices_router(DeviceAdmin(AnonymousBroker(), shards=shards))])
    username, password = unique("admin"), "correct horse battery"
    with pool.connection() as conn:
        create_user(conn, username, password, Role.ADMIN)
    with TestClient(app) as http:
        token = http.post("/api/v1/auth/token", data={"username": username, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        answers = []
        for kind in ("bed", "button"):
            reply = http.post("/api/v1/devices", headers=headers,
                              json={"id": unique(kind[:3]), "kind": kind, "resident_id": resident_id})
            assert reply.status_code == 201, reply.text
            answers.append(reply.json())
        shown = [http.get(f"/api/v1/devices/{body['id']}", headers=headers).json() for body in answers]
    assert set(answers[0]) == {"id", "kind", "resident_id", "secret", "mqtt_url"}
    # a: no public URL configured, so its internal one without the service's credentials
    assert answers[0]["mqtt_url"] == "mqtt://10.1.0.5:1883"
    assert answers[1]["mqtt_url"] == "mqtts://broker-b.care.example:8883"
    assert [d["shard"] for d in shown] == [a, b]


def test_with_one_shard_the_answer_names_the_broker_of_the_settings(pool, resident_id, broker_url):
    settings = Settings(mqtt_url=broker_url, mqtt_shards="", mqtt_public_urls="")
    admin = DeviceAdmin(AnonymousBroker(), shards=Shards.from_settings(settings))
    with pool.connection() as conn:
        device, _ = admin.provision(conn, unique("bed"), DeviceKind.BED, resident_id)
    assert device.shard == "main"
    assert admin.mqtt_url(device) == without_credentials(broker_url)


# -- accounts on the device's own shard ------------------------------------------------------


@pytest.fixture(scope="module")
def dynsec_brokers(tmp_path_factory) -> Iterator[tuple[embedded.Embedded, embedded.Embedded]]:
    """Two mosquittos with dynamic security and the same admin and service accounts, as
    `python -m gateway.broker_config a.json b.json` makes them for two shards."""
    if not (embedded.mosquitto_available() and embedded.dynsec_plugin()):
        pytest.skip("needs mosquitto with its dynamic-security plugin")
    first_dir, second_dir = tmp_path_factory.mktemp("shard-a"), tmp_path_factory.mktemp("shard-b")
    first = embedded.start_mosquitto(first_dir, dynsec=True)
    try:
        # the second shard's file: the same accounts (start_mosquitto keeps what it finds there)
        known = json.loads((first_dir / "service-accounts.json").read_text())
        write_dynsec_file(second_dir / "dynamic-security.json", known["admin"],
                          passwords={name: p for name, (_, p) in known["services"].items()})
        (second_dir / "service-accounts.json").write_text(json.dumps(known))
        second = embedded.start_mosquitto(second_dir, dynsec=True)
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


def _accepted(broker_url: str, username: str, password: str) -> bool:
    """Whether the broker lets this device account connect (its CONNACK)."""
    address = BrokerAddress.parse(broker_url)
    answers: queue.Queue = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, clean_session=True)
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: answers.put(rc)
    client.reconnect_delay_set(60, 60)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        return not answers.get(timeout=10).is_failure
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_devices_account_is_made_and_removed_on_its_own_shards_broker_only(
    dynsec_brokers, pool, resident_id, database_url
):
    first, second = dynsec_brokers
    a, b = _names("a", "b")
    # the admin URL names the first broker; with two shards its credentials serve both
    settings = Settings(mqtt_shards=f"{a}={first.url},{b}={second.url}", mqtt_admin_url=first.admin_url,
                        database_url=database_url)
    accounts = accounts_for(settings)
    assert set(accounts) == {a, b} and all(isinstance(m, DynsecAccounts) for m in accounts.values())
    assert (accounts[b].address.host, accounts[b].address.port) == ("127.0.0.1", int(second.url.rsplit(":", 1)[1]))
    admin = DeviceAdmin(accounts, shards=Shards.from_settings(settings))
    try:
        with pool.connection() as conn:
            one, one_secret = admin.provision(conn, unique("bed"), DeviceKind.BED, resident_id)
            two, two_secret = admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
        assert (one.shard, two.shard) == (a, b)
        assert accounts[a].device_exists(one.id) and not accounts[b].device_exists(one.id)
        assert accounts[b].device_exists(two.id) and not accounts[a].device_exists(two.id)
        assert _accepted(first.url, one.id, one_secret) and not _accepted(second.url, one.id, one_secret)
        assert _accepted(second.url, two.id, two_secret) and not _accepted(first.url, two.id, two_secret)

        with pool.connection() as conn:
            admin.revoke(conn, two.id)
        assert not accounts[b].device_exists(two.id)
        assert not _accepted(second.url, two.id, two_secret)
        assert accounts[a].device_exists(one.id)  # the other shard's device untouched
    finally:
        for manager in accounts.values():
            manager.close()


def test_broker_config_writes_the_same_accounts_for_every_shard(tmp_path, capsys):
    from gateway.broker_config import ADMIN_USERNAME, _main

    files = [tmp_path / "a.json", tmp_path / "b.json"]
    assert _main([str(f) for f in files]) == 0
    printed = capsys.readouterr().out
    admin_password = printed.split(f"mqtt://{ADMIN_USERNAME}:", 1)[1].split("@", 1)[0]

    def admin_matches(path) -> bool:
        config = json.loads(path.read_text())
        admin = next(c for c in config["clients"] if c["username"] == ADMIN_USERNAME)
        digest = hashlib.pbkdf2_hmac("sha512", admin_password.encode(), base64.b64decode(admin["salt"]),
                                     admin["iterations"], 64)
        return base64.b64encode(digest).decode() == admin["password"]

    assert all(admin_matches(f) for f in files)
    configs = [json.loads(f.read_text()) for f in files]
    assert [sorted(c["username"] for c in config["clients"]) for config in configs][0] == \
        sorted(c["username"] for c in configs[1]["clients"])
    assert configs[0]["roles"] == configs[1]["roles"]


# -- a gateway bridges one shard ---------------------------------------------------------------


@pytest.fixture
def two_shards(private_brokers, database_url, instance) -> tuple[Settings, str, str]:
    """Settings of two shards on anonymous brokers: `here` and `there`."""
    here, there = _names("here", "there")
    settings = Settings(mqtt_shards=f"{here}={private_brokers[0].url},{there}={private_brokers[1].url}",
                        database_url=database_url, instance=instance)
    return settings, here, there


def test_a_gateway_refuses_a_device_of_another_shard_and_sweeps_only_its_own(
    two_shards, private_brokers, pool, resident_id, log_tap, log_listener
):
    settings, here, there = two_shards
    broker_url = private_brokers[0].url  # the broker of `here`, which lets anyone in
    config = GatewaySettings(flush_interval_s=0.1, sweep_interval_s=0.2, shard=here)
    gateway = build(settings, pool, config)
    assert gateway.admin.shards.names() == [here, there]
    states = log_listener(log_tap.subjects.of_stream("state"))
    events = log_listener(log_tap.subjects.events_of("button"))
    with pool.connection() as conn:
        local, local_secret = registry.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id, here)
        stranger, stranger_secret = registry.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id, there)
        bed_here = registry.provision(conn, unique("bed"), DeviceKind.BED, resident_id, here)[0]
        bed_there = registry.provision(conn, unique("bed"), DeviceKind.BED, resident_id, there)[0]
        # two beds online and unheard for an hour: silent, for the gateway of their shard
        conn.execute(
            "UPDATE gateway.devices SET state = 'online', online = true, announced_state = 'online',"
            " last_seen = now() - interval '1 hour', state_changed_at = now() - interval '1 hour'"
            " WHERE id = ANY(%s)", ([bed_here.id, bed_there.id],))
    gateway.start()
    devices: list[FakeDevice] = []
    try:
        # the anonymous broker lets the stranger in; the gateway does not
        button = FakeDevice(broker_url, local.id, local_secret).connect()
        outsider = FakeDevice(broker_url, stranger.id, stranger_secret).connect()
        devices += [button, outsider]
        assert button.link.wait_subscribed(10) and outsider.link.wait_subscribed(10)
        told = outsider.next_error()  # its status
        assert told["topic"].endswith(f"/{stranger.id}/status")
        assert f"provisioned on broker shard {there!r}, not {here!r}" in told["reason"]
        outsider.press("meal")
        told = outsider.next_error()
        assert told["topic"].endswith(f"/{stranger.id}/events")
        assert told["reason"].startswith(f"device: {stranger.id} is provisioned on broker shard")

        event_id = button.press("meal")
        _, forwarded = events.next(lambda s, p: p["event_id"] == event_id)
        assert forwarded["device_id"] == local.id
        # the states this gateway announces (in either order) carry its shard
        announced: dict[tuple[str, str], dict] = {}

        def both(subject: str, state: dict) -> bool:
            announced[(state["device_id"], state["state"])] = state
            return {(local.id, "online"), (bed_here.id, "silent")} <= set(announced)

        states.next(both)
        assert announced[(local.id, "online")]["shard"] == here
        assert announced[(bed_here.id, "silent")]["shard"] == here
        wait_for(lambda: _tally(pool, stranger.id) == {"wrong_shard": 2}, what="the rejections tallied")
        assert device_row(pool, stranger.id)["state"] == "never_seen"  # its status changed nothing
        assert device_row(pool, bed_there.id)["state"] == "online"  # not this gateway's to judge
        assert device_row(pool, bed_here.id)["state"] == "silent"
    finally:
        for device in devices:
            device.close()
        gateway.stop()
    stored = [p for p in log_tap.payloads(streams.EVENTS)]
    assert [p["device_id"] for p in stored] == [local.id]  # nothing of the stranger's


def _tally(pool, device_id: str) -> dict[str, int]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT code, count FROM gateway.rejections WHERE device_id = %s",
                            (device_id,)).fetchall()
    return {r["code"]: r["count"] for r in rows}


def test_a_gateway_must_be_told_which_of_several_shards_it_bridges(two_shards, pool):
    settings, here, there = two_shards
    unnamed = build(settings, pool, GatewaySettings())
    assert unnamed.edges == []  # the console builds it so, for the routes only
    with pytest.raises(ShardError, match="HOMECARE_GATEWAY_SHARD must name the shard"):
        unnamed.start()
    with pytest.raises(ShardError, match="HOMECARE_GATEWAY_SHARD: no broker shard named 'nowhere'"):
        build(settings, pool, GatewaySettings(shard="nowhere")).start()


# -- a database from before shards ------------------------------------------------------------


def _before_shards(url: str) -> list[str]:
    """Take a migrated database back to before migration 0004, with two devices (one revoked)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS gateway.devices_shard")
        conn.execute("ALTER TABLE gateway.devices DROP COLUMN shard")
        conn.execute("DELETE FROM public.schema_migrations WHERE component = 'gateway' AND version = 4")
        conn.execute("DELETE FROM gateway.devices")
        resident = enrol(conn, NewResident(name="Li Wei", address="3 River Road", district="North",
                                           location=Location(lat=31.2, lon=121.5))).id
        ids = [unique("bed"), unique("btn")]
        for device_id, kind in zip(ids, ("bed", "button"), strict=True):
            conn.execute("INSERT INTO gateway.devices (id, kind, resident_id, secret_hash)"
                         " VALUES (%s, %s, %s, 'x')", (device_id, kind, resident))
        conn.execute("UPDATE gateway.devices SET revoked_at = now() WHERE id = %s", (ids[1],))
    return ids


def _shard_of(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT id, shard FROM gateway.devices").fetchall())


def test_the_migration_puts_existing_devices_on_the_first_configured_shard(scratch_database):
    migrate(scratch_database)
    ids = _before_shards(scratch_database)
    # the deployment names its brokers before upgrading: its one broker is the first shard
    settings = Settings(mqtt_shards="old=mqtt://10.0.0.5:1883,new=mqtt://10.0.0.6:1883")
    migrate(scratch_database, first_shard=first_name(settings))
    assert _shard_of(scratch_database) == {ids[0]: "old", ids[1]: "old"}
    with psycopg.connect(scratch_database) as conn:
        assert registry.active_per_shard(conn) == {"old": 1}
        # an insert that names no shard (an older tool) lands on `main`
        conn.execute("INSERT INTO gateway.devices (id, kind, resident_id, secret_hash)"
                     " SELECT 'bed-late-0001', 'bed', resident_id, 'x' FROM gateway.devices LIMIT 1")
        assert conn.execute("SELECT shard FROM gateway.devices WHERE id = 'bed-late-0001'").fetchone()[0] == "main"

    # without shards configured, the one broker of HOMECARE_MQTT_URL: `main`
    ids = _before_shards(scratch_database)
    migrate(scratch_database)
    assert _shard_of(scratch_database) == {ids[0]: "main", ids[1]: "main"}
