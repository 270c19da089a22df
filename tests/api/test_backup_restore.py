"""A backup of the network's database (deploy/db/backup, pg_dump) restored into a new database
(deploy/db/restore) brings back the residents, devices, requests and samples, row for row, and
the charts read the same from it, on plain PostgreSQL and on TimescaleDB (there with the
samples' chunk compressed first, as the compression policy leaves older days). The scripts are
the ones deploy/README.md gives."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from homecare.db.migrate import Flavour, current_flavour
from services.telemetry.domain.samples import SampleRow
from services.telemetry.queries import vitals
from services.telemetry.store.samples import write_samples
from tests.support import fresh_database, unique

SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "db"

# What a restore must bring back: each table, ordered by its key.
TABLES = {
    "registry.residents": "id",
    "gateway.devices": "id",
    "dispatch.requests": "id",
    "dispatch.timeline": "id",
    "telemetry.bed_samples": "device_id, ts",
}


def _tools_or_skip(url: str) -> None:
    """pg_dump refuses a server of a newer major version than its own (the embedded server's)."""
    if not shutil.which("pg_dump") or not shutil.which("pg_restore"):
        pytest.skip("pg_dump and pg_restore are not installed (Debian: postgresql-client)")
    version = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    tools = int(re.search(r"(\d+)\.\d+", version).group(1))
    with psycopg.connect(url) as conn:
        server = conn.info.server_version // 10000
    if tools < server:
        pytest.skip(f"pg_dump {tools} cannot back up a PostgreSQL {server} server")


def _rows(url: str, table: str, key: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()


def test_a_restored_backup_brings_back_residents_devices_requests_and_samples(
    client, admin, dispatcher, pool, database_url, server_database_url, tmp_path
):
    _tools_or_skip(database_url)
    resident = client.post("/api/v1/residents", json={
        "name": "Backup Resident", "address": "2 Restore Lane", "district": "Backup",
        "location": {"lat": 31.21, "lon": 121.47}}, headers=admin)
    assert resident.status_code == 201, resident.text
    resident_id = resident.json()["id"]
    bed = unique("bed-backup")
    for device, kind in ((bed, "bed"), (unique("btn-backup"), "button")):
        answer = client.post("/api/v1/devices", json={"id": device, "kind": kind, "resident_id": resident_id},
                             headers=admin)
        assert answer.status_code == 201, answer.text
    request = client.post("/api/v1/requests", json={"resident_id": resident_id, "service": "meal"},
                          headers=dispatcher)
    assert request.status_code == 201, request.text
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with pool.connection() as conn, conn.transaction():
        write_samples(conn, [SampleRow(start + timedelta(seconds=i), bed, resident_id, True, 60 + i % 7,
                                       14 + i % 3, 0.25) for i in range(600)])

    with psycopg.connect(database_url, autocommit=True) as conn:
        if current_flavour(conn) is Flavour.TIMESCALE:
            compressed = conn.execute(
                "SELECT count(compress_chunk(c, if_not_compressed => true))"
                " FROM show_chunks('telemetry.bed_samples') c").fetchone()[0]
            assert compressed >= 1

    backup = tmp_path / "homecare.dump"
    subprocess.run([SCRIPTS / "backup", database_url, backup], check=True, capture_output=True, text=True)
    assert backup.stat().st_size > 0
    with fresh_database(server_database_url, "homecare_restored") as restored:
        done = subprocess.run([SCRIPTS / "restore", restored, backup], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        for table, key in TABLES.items():
            assert _rows(restored, table, key) == _rows(database_url, table, key), table
        with psycopg.connect(restored) as conn:
            assert conn.execute("SELECT name FROM registry.residents WHERE id = %s",
                                (resident_id,)).fetchone() == ("Backup Resident",)
            assert conn.execute("SELECT count(*) FROM dispatch.requests WHERE id = %s",
                                (request.json()["id"],)).fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM telemetry.bed_samples WHERE device_id = %s",
                                (bed,)).fetchone() == (600,)
        # The chart of the bed reads the same from the restored database (rollups included).
        with psycopg.connect(restored) as conn, pool.connection() as original:
            window = (start - timedelta(minutes=1), start + timedelta(minutes=11))
            for resolution in ("raw", "1m"):
                assert vitals(conn, bed, *window, resolution) == vitals(original, bed, *window, resolution)
            assert len(vitals(conn, bed, *window, "raw")) == 600
        # A restore never goes over a database in use.
        again = subprocess.run([SCRIPTS / "restore", restored, backup], capture_output=True, text=True)
        assert again.returncode == 1 and "not empty" in again.stderr
