"""Versioned SQL migrations, applied on start, idempotent, one folder per component.

A file is `NNNN_name.sql`. Where TimescaleDB and plain PostgreSQL need different SQL, a
migration comes as `NNNN_name.timescale.sql` and `NNNN_name.plain.sql`, and the flavour of the
database picks one. Applied versions are recorded in `public.schema_migrations`.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
# Every component's migrations, in the order they must run.
COMPONENTS: dict[str, str] = {
    "core": "homecare.db",
    "gateway": "gateway",
    "telemetry": "services.telemetry",
    "dispatch": "services.dispatch",
}
_LOCK_ID = 0x686F6D65  # "home": one migrator at a time across replicas


class Flavour(StrEnum):
    TIMESCALE = "timescale"
    PLAIN = "plain"


_STATE = """
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS created,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available
"""


def error_reason(exc: BaseException) -> str:
    """What the server said, in one line (its first), for a log line or an operator; the error's
    type when it said nothing."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def detect_flavour(conn: psycopg.Connection) -> Flavour:
    """TimescaleDB when the extension is created here or can be, else plain PostgreSQL.

    The extension is created on a connection of its own: where it is installed but not preloaded
    (`shared_preload_libraries`), `CREATE EXTENSION` answers FATAL and the server closes that
    connection, which must not be the caller's."""
    created, available = conn.execute(_STATE).fetchone()
    if created:
        return Flavour.TIMESCALE
    if not available:
        return Flavour.PLAIN
    try:
        with psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True) as own:
            own.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return Flavour.TIMESCALE
    except psycopg.Error as exc:
        reason = error_reason(exc)
        log.warning(
            "TimescaleDB is installed on this server but cannot be used here (%s): using plain PostgreSQL;"
            " to use it, add timescaledb to shared_preload_libraries, restart the server, and migrate a new"
            " database", reason, extra={"reason": reason},
        )
        return Flavour.PLAIN


def _files(package: str) -> list[Path]:
    folder = resources.files(package) / "migrations"
    if not folder.is_dir():
        return []
    return sorted(Path(str(f)) for f in folder.iterdir() if f.name.endswith(".sql"))


def pending(package: str, flavour: Flavour) -> list[tuple[int, str, Path]]:
    """(version, name, file) of every migration of a component for this flavour, in order."""
    out = []
    for path in _files(package):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name not understood: {path}")
        version, name, only = match.groups()
        if only is None or only == flavour.value:
            out.append((int(version), name, path))
    return out


def migrate(url: str, components: list[str] | None = None, first_shard: str = "main") -> Flavour:
    """Apply every pending migration; safe to call from many processes at once.

    `first_shard`: the broker shard that devices stored before there were shards are on (the
    first of HOMECARE_MQTT_SHARDS, see homecare.shards.first_name); migrations read it as the
    session setting `homecare.first_shard`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        conn.execute("SELECT set_config('homecare.first_shard', %s, false)", (first_shard,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                " component text NOT NULL, version int NOT NULL, name text NOT NULL,"
                " flavour text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (component, version))"
            )
            # A database keeps the flavour it was first migrated with: a server that gains (or
            # loses) TimescaleDB later must not get the other flavour's half of the migrations.
            started = conn.execute("SELECT EXISTS (SELECT 1 FROM public.schema_migrations)").fetchone()[0]
            flavour = current_flavour(conn) if started else detect_flavour(conn)
            log.info("database flavour: %s", flavour.value, extra={"flavour": flavour.value})
            for component in components or list(COMPONENTS):
                _apply_component(conn, component, flavour)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return flavour


def _apply_component(conn: psycopg.Connection, component: str, flavour: Flavour) -> None:
    done = {
        r[0]
        for r in conn.execute(
            "SELECT version FROM public.schema_migrations WHERE component = %s", (component,)
        )
    }
    for version, name, path in pending(COMPONENTS[component], flavour):
        if version in done:
            continue
        log.info("applying migration %s %04d_%s", component, version, name)
        with conn.transaction():
            conn.execute(path.read_text())
            conn.execute(
                "INSERT INTO public.schema_migrations (component, version, name, flavour)"
                " VALUES (%s, %s, %s, %s)",
                (component, version, name, flavour.value),
            )


def current_flavour(conn: psycopg.Connection) -> Flavour:
    """The flavour the migrations were applied with."""
    row = conn.execute(
        "SELECT flavour FROM public.schema_migrations ORDER BY component = 'core' DESC LIMIT 1"
    ).fetchone()
    value = row[0] if isinstance(row, tuple) else (row or {}).get("flavour")
    return Flavour(value or "plain")
