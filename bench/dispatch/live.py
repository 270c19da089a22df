"""Press -> first offer through the real running dispatch: the real broker and PostgreSQL (the
configured ones, or embedded ones started here), the component `homecare dispatch` runs, button
presses put into the internal log as the gateway would, and the clock stopped when the
transaction that made the request's first offer commits (its NOTIFY reaches a listener).

Providers have room for every press, so what is measured is the system, not a queue for people.
Nobody answers the offers here, so offers are given an hour before they lapse (and emergencies
40 minutes before they count as late): otherwise hundreds of unanswered offers would expire, and
escalate, all at once in the middle of the measurement, which a fleet that answers never sees.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from homecare import log as internal_log
from homecare.db import migrate, open_pool
from homecare.internal import DeviceEvent
from homecare.log import Log
from homecare.residents import store as residents
from homecare.settings import Settings
from launch.infra import resolve
from services.dispatch.bootstrap import build
from services.dispatch.domain.matching import Location
from services.dispatch.settings import DispatchSettings
from services.dispatch.store import providers
from services.dispatch.store.timeline import CHANGED_CHANNEL

from .world import SHANGHAI

log = logging.getLogger(__name__)
SERVICES = ("meal", "mobility", "bathing", "escort", "emergency")
QUIET = {"*": {"offer_timeout_s": 3600}, "emergency": {"assign_within_s": 2400, "warn_before_assign_due_s": 60}}


@contextmanager
def _database(server_url: str) -> Iterator[str]:
    """A fresh, migrated database on the server, dropped afterwards."""
    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    url = psycopg.conninfo.make_conninfo(**{**info, "dbname": name})
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Listener(threading.Thread):
    """LISTENs for request changes; keeps the first time each request was seen committed."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {CHANGED_CHANNEL}")
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for note in self.conn.notifies(timeout=0.2):
                self.seen.setdefault(note.payload, time.time())

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.conn.close()


def _populate(pool, resident_count: int, provider_count: int) -> list[str]:
    ids = []
    with pool.connection() as conn, conn.transaction():
        for i in range(resident_count):
            d = SHANGHAI[i % len(SHANGHAI)]
            body = residents.NewResident(
                name=f"Bench {i}", address=f"{i} {d.roads[0]}", district=d.name,
                location=residents.Location(lat=d.lat + (i % 7 - 3) * 0.004, lon=d.lon + (i % 5 - 2) * 0.004),
            )
            ids.append(residents.enrol(conn, body).id)
        for i in range(provider_count):
            d = SHANGHAI[i % len(SHANGHAI)]
            providers.insert(conn, f"p-bench-{i:02d}", f"Bench carer {i}", list(SERVICES),
                             Location(d.lat, d.lon), capacity=50)
    return ids


def _press(log_: Log, resident_id: str, service: str) -> float:
    now = datetime.now(UTC)
    event = DeviceEvent(
        device_id=f"btn-{resident_id[-10:]}", device_kind="button", resident_id=resident_id,
        event_id=str(uuid.uuid4()), ts=now, type="button.pressed", received_at=now, service=service,
    )
    sent = time.time()
    log_.publish(log_.subjects.event(event.type, event.device_id), event.dumps())
    return sent


def _latencies(pool, listener: Listener, pressed: dict[str, float], timeout: float = 60.0) -> dict:
    """Per press: from publishing it to the commit of its request's first offer."""
    deadline = time.time() + timeout
    rows: list[dict] = []
    while time.time() < deadline:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT r.id, r.resident_id, r.created_at, min(o.created_at) AS offered_at"
                " FROM dispatch.requests r LEFT JOIN dispatch.offers o ON o.request_id = r.id"
                " WHERE r.resident_id = ANY(%s) GROUP BY r.id", (list(pressed),),
            ).fetchall()
        if len(rows) == len(pressed) and all(r["offered_at"] and r["id"] in listener.seen for r in rows):
            break
        time.sleep(0.2)
    out, late = [], 0
    for r in rows:
        if r["offered_at"] is None or r["id"] not in listener.seen:
            continue
        if r["offered_at"] != r["created_at"]:
            late += 1  # queued and offered later: count from the offer's own time
            out.append((r["offered_at"].timestamp() - pressed[r["resident_id"]]) * 1000)
        else:
            out.append((listener.seen[r["id"]] - pressed[r["resident_id"]]) * 1000)
    out.sort()
    return {
        "presses": len(pressed), "measured": len(out), "offered_later": late,
        "p50_ms": round(statistics.median(out), 1) if out else None,
        "p99_ms": round(out[min(len(out) - 1, int(len(out) * 0.99))], 1) if out else None,
        "max_ms": round(out[-1], 1) if out else None,
    }


def measure(paced: int = 250, rate_per_s: float = 10.0, burst: int = 100, resident_count: int = 500,
            provider_count: int = 40) -> dict:
    """Press -> first offer, for presses paced at `rate_per_s`; then bursts sent at once: a
    quarter of `burst`, `burst`, and `burst` again with a second replica sharing the work."""
    infra = resolve(Settings(), allow_embedded=True)
    try:
        with _database(infra.settings.database_url) as url:
            return _run(infra.settings.model_copy(update={"database_url": url, "instance": "bench"}), paced,
                        rate_per_s, burst, resident_count, provider_count, infra)
    finally:
        infra.stop()


def _run(settings: Settings, paced: int, rate_per_s: float, burst: int, resident_count: int,
         provider_count: int, infra) -> dict:
    pool = open_pool(settings.database_url, max_size=12, name="bench")
    dispatch = DispatchSettings(policies=QUIET)
    component = build(settings, pool, dispatch)
    second = build(settings.model_copy(update={"instance": "bench-2"}), pool, dispatch)
    listener = Listener(settings.database_url)
    presses_log = internal_log.connect(settings, "bench-presses")
    try:
        people = _populate(pool, resident_count, provider_count)
        small = max(1, burst // 4)
        if paced + small + 2 * burst >= len(people):
            raise ValueError("more presses than residents: each press must open its own request")
        component.start()
        listener.start()
        presses_log.start()
        warm = {people[-1]: _press(presses_log, people[-1], "meal")}  # first queries, connections, caches
        _latencies(pool, listener, warm)
        paced_presses = {}
        for i, resident in enumerate(people[:paced]):
            paced_presses[resident] = _press(presses_log, resident, SERVICES[i % len(SERVICES)])
            time.sleep(1.0 / rate_per_s)
        paced_result = _latencies(pool, listener, paced_presses)
        rest = iter(people[paced:])

        def burst_of(n: int) -> dict:
            presses = {r: _press(presses_log, r, SERVICES[i % 4]) for i, r in zip(range(n), rest, strict=False)}
            return _latencies(pool, listener, presses)

        small_result, burst_result = burst_of(small), burst_of(burst)
        second.start()  # the scaling path: replicas pull from the same durable consumer
        two_result = burst_of(burst)
        with pool.connection() as conn:
            version = conn.execute("SHOW server_version").fetchone()["server_version"]
        brokers = [e.name for e in infra.embedded if e.name not in ("postgresql", "nats")]
        return {
            "paced": {**paced_result, "rate_per_s": rate_per_s},
            "small_burst": small_result,
            "burst": burst_result,
            "burst_two_replicas": two_result,
            "postgresql": version,
            "broker": brokers[0] if brokers else "configured (HOMECARE_MQTT_URL)",
        }
    finally:
        presses_log.stop()
        second.stop()
        component.stop()
        listener.close()
        pool.close()
