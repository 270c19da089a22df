"""The simulator against the whole platform in this process: the demo preset's first minute."""

from __future__ import annotations

import secrets
from datetime import datetime

import httpx
import pytest

from devices.simulator.run import Simulation
from devices.simulator.scenario import Scenario
from homecare.auth import Role, create_user
from homecare.db import open_pool
from homecare.settings import Settings
from launch import assemble
from launch.embedded import free_port
from launch.serve import HttpServer
from tests.support import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def platform(database_url, broker_url, instance):
    """Every component on the test database and broker, serving the operator API."""
    settings = Settings(database_url=database_url, mqtt_url=broker_url, instance=instance)
    pool = open_pool(database_url, max_size=12, name="simulator-e2e")
    components = [assemble.build_component(n, settings, pool) for n in assemble.BUILDERS]
    started, server = [], None
    try:
        for component in components:
            component.start()
            started.append(component)
        server = HttpServer(assemble.http_app("homecare", pool, components, True), "127.0.0.1", free_port())
        server.start()
        admin = (f"admin-{instance}", secrets.token_urlsafe(12))
        with pool.connection() as conn:
            create_user(conn, *admin, Role.ADMIN)
        yield server.url, pool, admin
    finally:
        if server:
            server.stop()
        for component in reversed(started):
            component.stop()
        pool.close()


def test_demo_requests_move_through_their_states_within_a_minute(platform, broker_url):
    from services.dispatch import queries as dispatch_queries
    from services.telemetry import alert_queries as telemetry_alert_queries
    from services.telemetry import queries as telemetry_queries

    api_url, pool, admin = platform
    # Self-tests every simulated hour, so that each v1.1 device sends one within the minute.
    simulation = Simulation(api_url, broker_url, Scenario.demo(selftest_interval_h=1), *admin, ledger=True)
    simulation.start()
    try:
        roster = simulation.roster
        assert len(roster.residents) == 20 and len(roster.providers) == 8
        wait_for(lambda: simulation.stats()["devices_connected"] == 40, timeout=20, what="40 devices online")
        wait_for(lambda: simulation.stats()["requests_completed"] >= 3, timeout=60, interval=0.5,
                 what="three requests completed")
        stats = simulation.stats()
        assert stats["presses"] >= 3 and stats["offers_accepted"] >= 3 and stats["requests_arrived"] >= 3
        commands = stats["commands_received"]
        for kind in ("request.acknowledged", "request.assigned", "request.completed"):
            assert commands.get(kind, 0) >= 1, f"no {kind} reached a button: {commands}"
        wait_for(lambda: simulation.stats()["acks_sent"] >= sum(commands.values()), timeout=10,
                 what="every command acked")
        assert stats["samples_sent"] > 0 and stats["telemetry_batches_sent"] > 0
        assert stats["provider_errors"] == 0

        # Self-tests (v1.1): each device that has it sent one, the older ones none, and the
        # platform accepted every one (a failed one, from the demo's broken parts, too).
        old = simulation.before_v11
        everyone = {d.id for d in roster.devices()}
        assert len(old) == 4 and stats["devices_before_v11"] == 4

        def tested() -> set[str]:
            events = simulation.ledger.to_json()["events"]
            return {d for d, evs in events.items() for e in evs if e[1] == "device.selftest"}

        wait_for(lambda: tested() == everyone - old, timeout=70, interval=0.5, what="a self-test from each v1.1 device")
        failing = [d for d, fault in simulation.faults.items() if fault == "selftest_fail"]
        sent = simulation.stats()["selftests_sent"]
        assert failing and sent.get("schedule.fail", 0) >= len(failing) and sent.get("schedule.pass", 0) > 0
        assert simulation.stats()["errors_received"] == 0, "the platform rejected a message of the reference client"

        with pool.connection() as conn:
            assert dispatch_queries.count_by_status(conn).get("completed", 0) >= 3
            assert telemetry_queries.count_samples(conn) > 0
        token = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": admin[0], "password": admin[1]})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        # Planned care: the homes got care plans and the day was planned; every visit it asks for
        # is on a route or says why not (whatever the hour the test runs at).
        assert len(roster.care_plans) >= 16 and len(roster.planned_days) == 1
        day = roster.planned_days[0]
        routes = httpx.get(f"{api_url}/api/v1/plans/{day}/routes", headers=headers).json()
        ours = {r.id for r in roster.residents}
        stops = [s for r in routes["routes"] for s in r["stops"] if s["resident_id"] in ours]
        unplanned = [s for s in routes["unplanned"] if s["resident_id"] in ours]
        assert stops or unplanned, routes
        assert all(s["unplanned_reason"] for s in unplanned) and routes["run"] is not None
        beds = [h.bed.id for h in roster.residents]
        new_bed = next(b for b in beds if b not in old)
        device = httpx.get(f"{api_url}/api/v1/devices/{new_bed}", headers=headers).json()
        assert device["online"] is True and device["fw"] == "2.3.1"
        old_bed = next(b for b in beds if b in old)
        assert httpx.get(f"{api_url}/api/v1/devices/{old_bed}", headers=headers).json()["fw"] == "2.2.4"

        # The platform asks a v1.1 button to test itself (selftest.request): the button acks, answers
        # with the command id, and the platform records the answer as its latest self-test.
        button = next(h.button.id for h in roster.residents if h.button.id not in old | set(simulation.faults))
        asked = httpx.post(f"{api_url}/api/v1/devices/{button}/selftest", headers=headers)
        assert asked.status_code == 202, asked.text
        command_id = asked.json()["command_id"]

        def acked_at() -> datetime | None:
            commands = httpx.get(f"{api_url}/api/v1/devices/{button}/commands", headers=headers).json()
            mine = [c for c in commands if c["command_id"] == command_id and c["state"] == "acknowledged"]
            return datetime.fromisoformat(mine[0]["acked_at"]) if mine else None

        wait_for(lambda: acked_at() is not None, timeout=20, interval=0.2, what="the selftest.request acked")

        def recorded() -> bool:  # the answer, or a later self-test
            with pool.connection() as conn:
                test = telemetry_alert_queries.selftests_of(conn, [button]).get(button)
            return test is not None and test["last_at"] >= acked_at()

        wait_for(recorded, timeout=20, interval=0.2, what="the answer recorded")
        assert simulation.stats()["selftests_sent"].get("platform.pass") == 1
    finally:
        simulation.stop()
    assert simulation.stats()["devices_connected"] == 0
