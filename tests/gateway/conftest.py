"""Fixtures of the gateway tests: a running gateway on the session's broker, log and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from gateway import registry
from gateway.bootstrap import GatewayComponent, build
from gateway.settings import GatewaySettings
from homecare.contract import DeviceKind
from homecare.residents.store import Location, NewResident, enrol
from homecare.settings import Settings
from tests.support import FakeDevice, LogTap, SubjectListener, forget_session, unique


def forget_gateway(broker_url: str, client_id: str) -> None:
    """Drop the persistent sessions of a stopped gateway's lanes (`client_id`: its bulk lane's):
    mosquitto would keep sending them their share of shared-subscription messages."""
    for lane in (client_id, f"{client_id}-control"):
        forget_session(broker_url, lane)


def counter(name: str, **labels: str) -> float:
    """Current value of a Prometheus counter (0 when never incremented)."""
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


@pytest.fixture
def config() -> GatewaySettings:
    return GatewaySettings(flush_interval_s=0.1, sweep_interval_s=0.2)


@pytest.fixture
def settings(broker_url: str, database_url: str, instance: str) -> Settings:
    return Settings(mqtt_url=broker_url, database_url=database_url, instance=instance)


@pytest.fixture
def gateway(settings: Settings, pool, config: GatewaySettings, broker_url: str) -> Iterator[GatewayComponent]:
    component = build(settings, pool, config)
    component.start()
    yield component
    component.stop()
    forget_gateway(broker_url, component.edge.link.client_id)


@pytest.fixture
def resident_id(pool) -> str:
    body = NewResident(
        name="Wang Fang", address="12 Garden Lane", district="East",
        location=Location(lat=31.2, lon=121.5),
    )
    with pool.connection() as conn:
        return enrol(conn, body).id


@pytest.fixture
def log_tap(nats_url: str, log_namespace: str) -> Iterator[LogTap]:
    """This test's streams of the internal log (where the gateway under test forwards), to read
    what is stored and to publish into; dropped after the test."""
    tap = LogTap(nats_url, log_namespace)
    yield tap
    tap.close()


@pytest.fixture
def log_listener(log_tap: LogTap) -> Iterator[Callable[..., SubjectListener]]:
    """Factory: a NATS subscriber on some subjects of this test's log (e.g.
    `log_tap.subjects.of_stream("state")`), collecting what the gateway forwards as it is stored."""
    made: list[SubjectListener] = []

    def make(*filters: str) -> SubjectListener:
        made.append(SubjectListener(log_tap, *filters))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def device_factory(broker_url: str, pool, resident_id: str, gateway: GatewayComponent):
    """Provision a device through the gateway and connect it as a FakeDevice."""
    made: list[FakeDevice] = []

    def make(kind: DeviceKind, connect: bool = True, status: dict | None = None) -> FakeDevice:
        with pool.connection() as conn:
            device, secret = gateway.admin.provision(
                conn, unique("bed" if kind is DeviceKind.BED else "btn"), kind, resident_id
            )
        fake = FakeDevice(broker_url, device.id, secret)
        made.append(fake)
        if connect:
            fake.connect(status)
            assert fake.link.wait_subscribed(10)
        return fake

    yield make
    for fake in made:
        fake.close()


def device_row(pool, device_id: str) -> dict:
    with pool.connection() as conn:
        return conn.execute("SELECT * FROM gateway.devices WHERE id = %s", (device_id,)).fetchone()


def get_device(pool, device_id: str) -> registry.Device:
    with pool.connection() as conn:
        return registry.get(conn, device_id)
