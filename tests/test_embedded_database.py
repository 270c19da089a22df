"""The embedded PostgreSQL (the demo's and a bare machine's default) comes with the settings the
platform's write pattern needs (launch.embedded.DATABASE_SETTINGS), written into its data folder
(postgresql.auto.conf), where a restart of the server (bench.faults crashes it) finds them."""

from __future__ import annotations

import psycopg

from launch import embedded


def _shown(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in embedded.DATABASE_SETTINGS}


def test_the_embedded_database_is_tuned_and_stays_tuned(server_folder):
    server = embedded.start_database(server_folder / "pg")
    try:
        assert _shown(server.url) == embedded.DATABASE_SETTINGS
    finally:
        server.stop()
    auto = (server_folder / "pg" / "postgresql.auto.conf").read_text()
    assert all(name in auto for name in embedded.DATABASE_SETTINGS)
