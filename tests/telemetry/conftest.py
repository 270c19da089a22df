"""Fixtures of the telemetry tests: a running component on the real broker and database."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from homecare.mqtt import BrokerAddress, MqttLink
from homecare.settings import Settings
from services.telemetry.bootstrap import TelemetryComponent, build
from services.telemetry.settings import TelemetrySettings
from tests.support import forget_session

FAST = TelemetrySettings(batch_window_ms=50, retry_min_s=0.1, retry_max_s=0.5, analysis_min_interval_s=0.1)


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
    for client_id in {c.link.client_id for c in running} | {c.alert_link.client_id for c in running}:
        forget_session(broker_url, client_id)


@pytest.fixture
def publisher(broker_url: str, instance: str) -> Iterator[MqttLink]:
    """A plain client standing in for the gateway."""
    link = MqttLink(BrokerAddress.parse(broker_url), f"gw-{instance}", clean_session=True)
    link.start()
    yield link
    link.stop()


class Listener:
    """Collects what arrives on one topic."""

    def __init__(self, broker_url: str, client_id: str, topic: str):
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.link = MqttLink(
            BrokerAddress.parse(broker_url), client_id, clean_session=True,
            subscriptions={topic: lambda client, message: self.messages.put(bytes(message.payload))},
        )

    def next(self, timeout: float = 10.0) -> bytes:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing arrived within {timeout}s") from None
