"""A failing TimescaleDB policy job, for real, is in the banner of every staff page, and goes when
the job succeeds again. Runs where the session's database is TimescaleDB (CI runs the console's
tests once more on it); the jobs themselves: tests/telemetry/test_timescale.py."""

from __future__ import annotations

import pytest

from homecare.db.migrate import Flavour, current_flavour
from services.telemetry.store import jobs
from tests.telemetry.helpers import jobs_by_hand_only, run_jobs_while_samples_are_locked

from .test_system_consumers import banner


def test_a_failing_database_job_is_in_the_banner_until_it_succeeds(pool, database_url, console, signed_in):
    with pool.connection() as conn:
        if current_flavour(conn) is not Flavour.TIMESCALE:
            pytest.skip("plain PostgreSQL has no policy jobs (the session's database is not TimescaleDB)")
    jobs_by_hand_only(pool)
    run_jobs_while_samples_are_locked(database_url)
    console.jobs.check_once()  # its thread reads every minute
    for page in ("/", "/alerts", "/system"):
        shown, text = banner(signed_in.get(page).text)
        assert shown and "Database upkeep needs an administrator: policy_retention on bed_samples failed at" in text
        assert "lock timeout" in text, page
    # The banner's refresh in the page reads the same lines from the API.
    notices = signed_in.get("/api/v1/system/consumers").json()["notices"]
    assert any(n.startswith("Database upkeep needs an administrator: policy_retention on bed_samples failed at")
               for n in notices)

    assert not [r for r in jobs.run_due(database_url) if r.error]
    console.jobs.check_once()
    shown, text = banner(signed_in.get("/").text)
    assert not shown and "Database upkeep" not in text
    assert not [n for n in signed_in.get("/api/v1/system/consumers").json()["notices"] if "Database upkeep" in n]
