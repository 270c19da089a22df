"""A real `homecare dispatch` process killed with SIGKILL and started again resumes every pending
offer, every SLA deadline and every press that arrived while it was down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from launch.embedded import free_port
from tests.support import unique, wait_for

from .harness import button_event, escalation, get_request, new_provider, new_resident, pending_offer

POLICIES = {"meal": {"offer_timeout_s": 3}, "mobility": {"assign_within_s": 6, "offer_timeout_s": 60}}


class DispatchProcess:
    """`homecare dispatch` as operations would run it: configuration in the environment."""

    def __init__(self, database_url: str, broker_url: str, instance: str, log: Path):
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            "HOMECARE_DATABASE_URL": database_url, "HOMECARE_MQTT_URL": broker_url,
            "HOMECARE_INSTANCE": instance, "HOMECARE_HTTP_PORT": str(self.port),
            "HOMECARE_DISPATCH_POLICIES": json.dumps(POLICIES), "HOMECARE_DISPATCH_SHARE_GROUP": f"dispatch-{instance}",
            "HOMECARE_DISPATCH_TIMER_INTERVAL_S": "0.2", "HOMECARE_DISPATCH_REQUEUE_S": "0.5",
            "HOMECARE_DISPATCH_OUTBOX_POLL_S": "0.5",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> DispatchProcess:
        command = [str(Path(sys.executable).parent / "homecare"), "dispatch"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=30, interval=0.2, what=f"homecare dispatch ready (log: {self.log})")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or acknowledged."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def dispatch_process(database_url, broker_url, instance, tmp_path, clean):
    started = []

    def make() -> DispatchProcess:
        process = DispatchProcess(database_url, broker_url, instance, tmp_path / "dispatch.log")
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def test_sigkill_and_restart_resume_offers_deadlines_and_queued_presses(pool, bus, dispatch_process):
    first = dispatch_process().start()
    new_provider(pool, services=("meal",), km=1, capacity=5)
    new_provider(pool, services=("meal",), km=2, capacity=5)
    new_provider(pool, services=("mobility",), km=1, capacity=5)
    meals = []
    for _ in range(4):
        device = unique("btn")
        bus.press(button_event(device, new_resident(pool), "meal"))
        meals.append(bus.command(device, "request.acknowledged")["request_id"])
    device = unique("btn")
    bus.press(button_event(device, new_resident(pool), "mobility"))
    mobility = bus.command(device, "request.acknowledged")["request_id"]
    # Acknowledged first, offered right after: every request has its pending offer before the kill.
    pending = wait_for(lambda: (found := {rid: pending_offer(get_request(pool, rid)) for rid in [*meals, mobility]})
                       and all(found.values()) and found, what="every request's pending offer before the kill")

    first.kill()
    queued = []
    for _ in range(3):  # presses while no dispatch runs: they wait in its persistent session
        device, resident = unique("btn"), new_resident(pool)
        bus.press(button_event(device, resident, "meal"))
        queued.append((device, resident))
    latest = max(o["deadline_at"] for rid, o in pending.items() if rid != mobility)
    time.sleep(max(0.0, (latest - get_request(pool, mobility)["created_at"]).total_seconds() - 0.5))
    time.sleep(max(0.0, 6.5 - 3.0))  # and past the mobility request's 6-second assignment target

    dispatch_process().start()  # the same instance: the same MQTT session

    for rid in meals:  # the offers left pending expired once each, and the next provider was asked
        request = wait_for(
            lambda rid=rid: (r := get_request(pool, rid))["offers"][0]["status"] == "expired" and len(r["offers"]) > 1
            and r, timeout=20, what=f"offer of {rid} expired and re-offered after the restart",
        )
        assert request["offers"][0]["id"] == pending[rid]["id"]
        assert request["offers"][1]["provider_id"] != pending[rid]["provider_id"]
        assert Counter(e["kind"] for e in request["timeline"])["offer.expired"] >= 1
        expired = [e for e in request["timeline"] if e["kind"] == "offer.expired"]
        assert Counter(e["detail"]["offer_id"] for e in expired).most_common(1)[0][1] == 1
    escalated = wait_for(lambda: (r := get_request(pool, mobility))["status"] == "escalated" and r, timeout=20,
                         what="the mobility request escalated by its assignment deadline")
    assert escalation(escalated)["detail"]["reason"] == "not assigned within 6 seconds"
    for device, resident in queued:  # handled by the new process, acknowledgement published by it
        ack = bus.command(device, "request.acknowledged", timeout=20)
        request = wait_for(lambda ack=ack: pending_offer(r := get_request(pool, ack["request_id"])) and r,
                           what="the queued press offered")
        assert request["resident_id"] == resident
    with pool.connection() as conn:
        unsent = conn.execute(
            "SELECT count(*) AS n FROM dispatch.outbox WHERE sent_at IS NULL AND request_id = ANY(%s)",
            ([*meals, mobility],),
        ).fetchone()["n"]
    assert unsent == 0
