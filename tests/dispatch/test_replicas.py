"""Two dispatch replicas on one database and one broker, under a burst of presses and providers
answering at random: no request ever has two pending offers, every offer is decided once, and no
provider holds more requests than its capacity."""

import random
import threading
import time
from collections import Counter, defaultdict

from psycopg.rows import dict_row

from homecare.errors import HomecareError
from homecare.settings import Settings
from services.dispatch.bootstrap import build
from services.dispatch.domain.requests import Status
from services.dispatch.usecases.context import Dispatch
from services.dispatch.usecases.offering import accept_offer, decline_offer
from services.dispatch.usecases.progress import advance
from tests.support import unique, wait_for

from .conftest import dispatch_settings
from .harness import button_event, new_provider, new_resident

SERVICES = ("meal", "mobility", "bathing")
FAILED_KINDS = {"offer.expired", "offer.declined", "offer.withdrawn"}


class Monitor(threading.Thread):
    """Samples the database while the replicas work, recording any broken invariant."""

    def __init__(self, pool, provider_ids):
        super().__init__(daemon=True)
        self.pool, self.ids = pool, list(provider_ids)
        self.violations: list[str] = []
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                over = cur.execute(
                    "SELECT p.id, p.capacity, count(r.id) AS held FROM dispatch.providers p"
                    " JOIN dispatch.requests r ON r.provider_id = p.id"
                    "   AND r.status IN ('assigned', 'en_route', 'arrived')"
                    " WHERE p.id = ANY(%s) GROUP BY p.id, p.capacity HAVING count(r.id) > p.capacity", (self.ids,),
                ).fetchall()
                twice = cur.execute(
                    "SELECT request_id, count(*) AS n FROM dispatch.offers WHERE status = 'pending'"
                    " GROUP BY request_id HAVING count(*) > 1"
                ).fetchall()
            self.violations += [f"over capacity: {r}" for r in over] + [f"two pending offers: {r}" for r in twice]
            self.samples += 1
            time.sleep(0.02)


class Providers(threading.Thread):
    """A provider app: answers pending offers at random (accept, decline or let lapse), finishes jobs."""

    def __init__(self, pool, provider_ids, seed, ctx: Dispatch, rolls: dict[str, float]):
        super().__init__(daemon=True)
        self.pool, self.ids, self.rng = pool, set(provider_ids), random.Random(seed)
        self.ctx = ctx  # the API of a replica answers with that replica's configuration
        self.stop = threading.Event()
        self.refused = Counter()
        # Each offer gets one roll, shared by the apps: some are never answered. (With a roll per
        # app an offer lapsed only when both rolled it, and a run could end with none lapsed.)
        self.choice = rolls

    def _try(self, kind, fn, *args):
        try:
            with self.pool.connection() as conn:
                fn(conn, self.ctx, *args)
            return True
        except HomecareError as exc:  # lost a race with a replica or the other app thread
            self.refused[f"{kind}: {type(exc).__name__}"] += 1
            return False

    def run(self):
        while not self.stop.is_set():
            with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                pending = cur.execute(
                    "SELECT id, provider_id FROM dispatch.offers WHERE status = 'pending' AND provider_id = ANY(%s)",
                    (list(self.ids),),
                ).fetchall()
                held = cur.execute(
                    "SELECT id, provider_id, status FROM dispatch.requests WHERE provider_id = ANY(%s)"
                    " AND status IN ('assigned', 'arrived')", (list(self.ids),),
                ).fetchall()
            for offer in pending:
                roll = self.choice.setdefault(offer["id"], self.rng.random())
                actor = f"provider:{offer['provider_id']}"
                if roll < 0.55:
                    self._try("accept", accept_offer, offer["id"], offer["provider_id"], actor)
                elif roll < 0.75:
                    self._try("decline", decline_offer, offer["id"], offer["provider_id"], actor)
            for job in held:
                if self.rng.random() < 0.3:
                    to = Status.ARRIVED if job["status"] == "assigned" else Status.COMPLETED
                    self._try("advance", advance, job["id"], to, f"provider:{job['provider_id']}", job["provider_id"])
            time.sleep(self.rng.uniform(0.01, 0.08))


def test_two_replicas_never_double_offer_nor_over_assign(pool, broker_url, instance, clean, bus):
    settings = dispatch_settings(instance, policies={"*": {"offer_timeout_s": 1.0}}, requeue_s=0.3)
    replicas = [build(Settings(mqtt_url=broker_url, instance=f"{instance}-{n}"), pool, settings) for n in "ab"]
    for replica in replicas:
        replica.start()
    carers = [new_provider(pool, services=SERVICES, km=0.5 + i, capacity=2) for i in range(6)]
    ids = [c["id"] for c in carers]
    monitor = Monitor(pool, ids)
    rolls: dict[str, float] = {}
    apps = [Providers(pool, ids, seed, replica.ctx, rolls) for seed, replica in zip((1, 2), replicas, strict=True)]
    for thread in (monitor, *apps):
        thread.start()

    rng = random.Random(7)
    presses = []
    try:
        for _ in range(45):
            resident, device, service = new_resident(pool), unique("btn"), rng.choice(SERVICES)
            presses.append((resident, service))
            bus.press(button_event(device, resident, service))
            if rng.random() < 0.3:
                bus.press(button_event(device, resident, service))  # pressed again
        wait_for(lambda: _settled(pool, presses), timeout=90, interval=0.5, what="every request completed or escalated")
    finally:
        for thread in (*apps, monitor):
            thread.stop.set()
        for thread in (*apps, monitor):
            thread.join(5)
        for replica in replicas:
            replica.stop()

    assert monitor.samples > 50 and monitor.violations == []
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        requests = cur.execute(
            "SELECT id, resident_id, service, status FROM dispatch.requests WHERE resident_id = ANY(%s)",
            ([r for r, _ in presses],),
        ).fetchall()
        ids_ = [r["id"] for r in requests]
        offers = cur.execute(
            "SELECT id, request_id, provider_id, status, answered_at FROM dispatch.offers WHERE request_id = ANY(%s)",
            (ids_,),
        ).fetchall()
        timeline = cur.execute(
            "SELECT request_id, kind, detail FROM dispatch.timeline WHERE request_id = ANY(%s) ORDER BY id", (ids_,),
        ).fetchall()
    # One request per press (second presses joined it), none lost.
    assert sorted((r["resident_id"], r["service"]) for r in requests) == sorted(presses)
    # Every offer made once and decided once.
    made = Counter(e["detail"]["offer_id"] for e in timeline if e["kind"] == "offer.made")
    assert set(made) == {o["id"] for o in offers} and set(made.values()) == {1}
    decided = Counter(
        e["detail"]["offer_id"] for e in timeline
        if e["kind"] in FAILED_KINDS or (e["kind"] == "assigned" and "offer_id" in e["detail"])
    )
    assert max(decided.values()) == 1
    assert all(o["answered_at"] is not None for o in offers if o["status"] != "pending")
    assert {o["id"] for o in offers if o["status"] != "pending"} == set(decided)
    # Nobody was asked again after declining or letting an offer lapse.
    failed = Counter((o["request_id"], o["provider_id"]) for o in offers if o["status"] in ("declined", "expired"))
    assert not failed or max(failed.values()) == 1
    # The work really was shared and contended.
    outcomes = Counter(o["status"] for o in offers)
    assert outcomes["accepted"] >= 10 and outcomes["expired"] >= 1 and outcomes["declined"] >= 1, outcomes
    assert all(sum(c.handled for c in replica.consumers) > 0 for replica in replicas)
    assert sum(sum(r.timers.fired.values()) for r in replicas) > 0
    by_status = defaultdict(int)
    for r in requests:
        by_status[r["status"]] += 1
    assert by_status["completed"] >= 10, dict(by_status)


def _settled(pool, presses) -> bool:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status IN ('completed', 'escalated', 'cancelled')) AS done"
            " FROM dispatch.requests WHERE resident_id = ANY(%s)",
            ([r for r, _ in presses],),
        ).fetchone()
    return row["n"] == len(presses) and row["done"] == row["n"]
