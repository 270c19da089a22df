"""Fixtures of the dispatch integration tests: a running component on the session's log, broker
and database, a bus client, and cleanup so one test's providers and requests never meet another's."""

from __future__ import annotations

import pytest

from homecare.settings import Settings
from services.dispatch.bootstrap import build
from services.dispatch.settings import DispatchSettings
from tests.support import LogTap

from .harness import Bus


@pytest.fixture
def clean(pool):
    """After the test: providers off shift, nothing left open (this session's own database)."""
    yield
    close_everything(pool)


def close_everything(pool) -> None:
    """Every provider off shift, every offer withdrawn, every request cancelled."""
    with pool.connection() as conn:
        conn.execute("UPDATE dispatch.providers SET on_shift = false")
        conn.execute("UPDATE dispatch.offers SET status = 'withdrawn', answered_at = now() WHERE status = 'pending'")
        conn.execute(
            "UPDATE dispatch.requests SET status = 'cancelled', cancelled_at = now()"
            " WHERE status NOT IN ('completed', 'cancelled')"
        )


def dispatch_settings(instance: str, **overrides) -> DispatchSettings:
    values = dict(timer_interval_s=0.2, outbox_poll_s=0.5, puback_timeout_s=5)
    values.update(overrides)
    return DispatchSettings(**values)


@pytest.fixture
def start_dispatch(pool, broker_url, instance, clean):
    """Factory: a started dispatch component with the given DispatchSettings overrides."""
    started = []

    def start(**overrides):
        settings = Settings(mqtt_url=broker_url, instance=instance)
        component = build(settings, pool, dispatch_settings(instance, **overrides))
        component.start()
        started.append(component)
        return component

    yield start
    for component in started:
        component.stop()


@pytest.fixture
def bus(broker_url, instance, nats_url, log_namespace):
    tap = LogTap(nats_url, log_namespace)
    client = Bus(broker_url, instance, tap).start()
    yield client
    client.stop()
    tap.close()
