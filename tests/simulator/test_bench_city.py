"""The pieces bench.scaleout builds its city from: the platform's process layout, the CPU phases,
the services' broker roles in a kept data folder, and a NATS cluster whose stream leader is
killed (real nats-server processes)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

from bench.common.accounts import refresh_service_roles
from bench.common.nats_cluster import NatsCluster
from bench.scaleout.run import ScaleoutOptions, _phases, city_layout
from gateway.broker_config import service_acls, service_username, write_dynsec_file
from homecare.log import Log, streams
from launch.embedded import wait_for_jetstream
from tests.support import unique, wait_for


def test_the_city_layout_has_a_bridge_per_shard_and_replicas_of_each_service():
    infra = SimpleNamespace(shards=("a", "b"), broker_urls={"a": "mqtt://127.0.0.1:1001", "b": "mqtt://127.0.0.1:1002"})
    layout = city_layout(ScaleoutOptions(replicas=2))(infra)
    assert layout.members("bridge-b") == ("gateway-b", "gateway-b-control")
    assert layout.members("telemetry") == ("telemetry-1", "telemetry-2")
    assert layout.members("dispatch") == ("dispatch-1", "dispatch-2")
    assert set(layout.members("all")) == set(layout.processes)
    component, env = layout.processes["gateway-b-control"]
    assert component == "gateway"
    assert env["HOMECARE_MQTT_URL"] == "mqtt://127.0.0.1:1002" and env["HOMECARE_GATEWAY_SHARD"] == "b"
    assert env["HOMECARE_GATEWAY_LANES"] == "control"
    for _, env in layout.processes.values():
        assert env["HOMECARE_MQTT_SHARDS"] == "a=mqtt://127.0.0.1:1001,b=mqtt://127.0.0.1:1002"
        assert env["HOMECARE_LOG_REPLICAS"] == "3"
    # Replicas of a service differ in their instance (their MQTT client ids).
    instances = {layout.processes[p][1]["HOMECARE_INSTANCE"] for p in ("dispatch-1", "dispatch-2")}
    assert len(instances) == 2


def test_cpu_phases_run_from_one_mark_to_the_next():
    marks = [("before faults", {"nats": 0.0}), ("nats-leader", {"nats": 2.0}), ("bridge", {"nats": 5.0})]
    assert _phases(marks, {"nats": 9.5}) == [
        {"phase": "before faults", "nats": 2.0}, {"phase": "nats-leader", "nats": 3.0},
        {"phase": "bridge", "nats": 4.5},
    ]


def test_a_kept_dynamic_security_file_gets_the_services_roles_of_this_version(tmp_path):
    path = tmp_path / "dynamic-security.json"
    write_dynsec_file(path)
    config = json.loads(path.read_text())
    for role in config["roles"]:
        if role["rolename"] == service_username("dispatch"):
            role["acls"] = [{"acltype": "publishClientSend", "topic": "old/topic", "allow": True, "priority": 0}]
    config["roles"].append({"rolename": "device-x", "acls": [{"acltype": "subscribePattern", "topic": "x"}]})
    path.write_text(json.dumps(config))
    refresh_service_roles(path)
    roles = {r["rolename"]: r["acls"] for r in json.loads(path.read_text())["roles"]}
    assert roles[service_username("dispatch")] == service_acls("dispatch")
    assert roles["device-x"] == [{"acltype": "subscribePattern", "topic": "x"}]  # not a service's: kept


def test_a_killed_stream_leader_is_replaced_and_rejoins(tmp_path):
    cluster = NatsCluster(tmp_path / "nats", nodes=3)
    cluster.start()
    namespace = unique("city").replace("-", "_")
    log = Log(cluster.url, "test-city", namespace, replicas=3)
    try:
        log.start()
        stream = log.stream(streams.EVENTS)
        leader = cluster.stream_leaders([stream])[stream]
        assert leader in cluster.names
        cluster.kill_node(leader)
        assert len(cluster.pids()) == 2
        wait_for(lambda: cluster.stream_leaders([stream], timeout=2)[stream] not in (None, leader),
                 timeout=60, what="another node leads the stream")
        cluster.start_node(leader)
        assert len(cluster.pids()) == 3
        # The stream is served again with all its replicas: a publish is stored on a quorum.
        done = []
        log.publish(f"{log.subjects.of_stream(streams.EVENTS.token).rstrip('>')}x", b"{}", lambda: done.append(1))
        wait_for(lambda: done, timeout=30, what="a publish acknowledged by the cluster")
    finally:
        log.stop()
        cluster.stop()


def test_a_log_started_while_its_cluster_lacks_a_node_waits_for_it(tmp_path):
    # Compose starts the NATS nodes and the services together: three replicas cannot be placed
    # until the third node is up, and a service's start waits for it instead of failing.
    cluster = NatsCluster(tmp_path / "nats", nodes=3)
    *early, late = cluster.names
    for name in early:  # two of the three: a meta leader, but no third peer for a replica
        cluster.start_node(name, wait=False)
    wait_for_jetstream(cluster.node_url(early[0]), 60)
    log = Log(cluster.url, "test-forming", unique("forming").replace("-", "_"), replicas=3)
    failure: list[BaseException] = []

    def start() -> None:
        try:
            log.start(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failure.append(exc)

    starting = threading.Thread(target=start)
    try:
        starting.start()
        time.sleep(3)
        assert starting.is_alive() and not failure, "the log gave up while the cluster lacked a node"
        cluster.start_node(late)
        starting.join(60)
        assert not starting.is_alive() and not failure, failure
        info = log.call(log.js.stream_info(log.stream(streams.EVENTS)))
        assert info.config.num_replicas == 3
    finally:
        log.stop()
        cluster.stop()
