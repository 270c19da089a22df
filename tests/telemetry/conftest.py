"""Fixtures of the telemetry tests: a running component on the real log and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from homecare.internal import DeviceEvent, DeviceState, TelemetryBatches
from homecare.settings import Settings
from services.telemetry.bootstrap import TelemetryComponent, build
from services.telemetry.settings import TelemetrySettings
from tests.support import LogTap

FAST = TelemetrySettings(analysis_min_interval_s=0.1)


def metric(name: str, **labels: str) -> float:
    """Current value of a metric sample (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def make_component(pool, broker_url: str, instance: str) -> Iterator[Callable[..., TelemetryComponent]]:
    """Builds and starts telemetry components: this test's replica (same client id each time),
    or another replica named by a suffix."""
    running: list[TelemetryComponent] = []

    def make(config: TelemetrySettings = FAST, replica: str = "") -> TelemetryComponent:
        settings = Settings(mqtt_url=broker_url, instance=f"{instance}{replica}")
        component = build(settings, pool, config)
        component.start()
        running.append(component)
        return component

    yield make
    for component in running:
        component.stop()


class Gateway:
    """Stands in for the gateway: puts validated device data into the log."""

    def __init__(self, tap: LogTap):
        self.tap = tap

    def telemetry(self, batches: TelemetryBatches) -> None:
        """Each device's batch as the gateway forwards it: one message per device."""
        for batch in batches.batches:
            self.tap.publish(self.tap.subjects.telemetry(batch.device_id), batch.dumps())

    def raw_telemetry(self, device_id: str, payload: bytes) -> None:
        self.tap.publish(self.tap.subjects.telemetry(device_id), payload)

    def event(self, event: DeviceEvent) -> None:
        self.tap.publish(self.tap.subjects.event(event.type, event.device_id), event.dumps())

    def state(self, state: DeviceState) -> None:
        self.tap.publish(self.tap.subjects.state(state.device_id), state.dumps())


@pytest.fixture
def log_tap(nats_url: str, log_namespace: str) -> Iterator[LogTap]:
    """This test's streams, to publish into and read from; dropped after the test."""
    tap = LogTap(nats_url, log_namespace)
    yield tap
    tap.close()


@pytest.fixture
def publisher(log_tap: LogTap) -> Gateway:
    """A stand-in for the gateway, publishing into this test's streams."""
    return Gateway(log_tap)
