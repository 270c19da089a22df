"""Which flavour `migrate` picks: TimescaleDB where the extension can be used, plain PostgreSQL
where it cannot (installed but not preloaded: `CREATE EXTENSION` answers FATAL and closes its
connection), and a database keeps the flavour it was first migrated with. Needs servers with
TimescaleDB installed (CI starts them with ../shared/timescaledb/start): the URLs of
HOMECARE_TEST_TIMESCALE_URL (preloaded) and HOMECARE_TEST_TIMESCALE_NOPRELOAD_URL (not)."""

from __future__ import annotations

import logging
import os

import psycopg
import pytest

from homecare.db import Flavour, migrate
from homecare.db.migrate import current_flavour
from tests.support import fresh_database


def _server(variable: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set (CI starts such a server with ../shared/timescaledb/start)")
    return url


def _extension_created(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 1


def test_timescaledb_installed_but_not_preloaded_falls_back_to_plain_and_says_why(caplog):
    with fresh_database(_server("HOMECARE_TEST_TIMESCALE_NOPRELOAD_URL")) as url:
        with caplog.at_level(logging.WARNING, logger="homecare.db.migrate"):
            assert migrate(url) is Flavour.PLAIN
        warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert "must be preloaded" in warning and "using plain PostgreSQL" in warning
        assert not _extension_created(url)
        with psycopg.connect(url) as conn:
            assert current_flavour(conn) is Flavour.PLAIN
            # The plain flavour's layout: samples in daily partitions, rollups as tables.
            kinds = dict(conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'telemetry'::regnamespace"
                " AND relname IN ('bed_samples', 'vitals_1m')").fetchall())
        assert kinds == {"bed_samples": "p", "vitals_1m": "r"}
        caplog.clear()
        assert migrate(url) is Flavour.PLAIN  # again: nothing to apply, nothing to warn about
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_timescaledb_preloaded_is_used():
    with fresh_database(_server("HOMECARE_TEST_TIMESCALE_URL")) as url:
        assert migrate(url) is Flavour.TIMESCALE
        assert _extension_created(url)


def test_a_database_keeps_the_flavour_it_was_first_migrated_with():
    """Migrated as plain PostgreSQL (here: only the core's migrations, recorded as plain, on a
    server where TimescaleDB could be created), it is not turned into TimescaleDB later."""
    with fresh_database(_server("HOMECARE_TEST_TIMESCALE_URL")) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE public.schema_migrations (component text NOT NULL, version int NOT NULL,"
                " name text NOT NULL, flavour text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (component, version))")
            conn.execute("INSERT INTO public.schema_migrations VALUES ('core', 0, 'earlier', 'plain')")
        assert migrate(url) is Flavour.PLAIN
        assert not _extension_created(url)
