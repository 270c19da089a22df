"""When a TimescaleDB policy job needs an operator (`JobState.problem`) and when it is due to run
by hand (`JobState.due`), without a database; and `homecare telemetry run-jobs` on plain
PostgreSQL. The jobs on the real extension: `test_timescale.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from homecare.db.migrate import Flavour, current_flavour
from launch.cli import main
from services.telemetry.store.jobs import JobState

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _job(**changes) -> JobState:
    values = dict(job_id=1000, proc_name="policy_refresh_continuous_aggregate", target="vitals_1m",
                  interval=MINUTE, last_success=NOW - 30 * timedelta(seconds=1), last_failure=None,
                  last_error=None, last_run_ok=True)
    values.update(changes)
    return JobState(**values)


def test_a_job_succeeding_on_time_is_no_problem_and_not_due():
    job = _job()
    assert job.problem(NOW, NOW - timedelta(days=1)) is None
    assert not job.due(NOW)
    assert job.due(NOW + MINUTE)


def test_a_failed_last_run_is_a_problem_with_its_reason_even_after_an_earlier_success():
    job = _job(last_failure=NOW - 10 * timedelta(seconds=1), last_error="cannot drop portal", last_run_ok=False)
    assert job.problem(NOW, NOW) == (
        "policy_refresh_continuous_aggregate on vitals_1m failed at 2026-12-03 11:59 UTC: cannot drop portal")
    # A failure before the last success is history.
    assert _job(last_failure=NOW - 5 * MINUTE, last_error="x", last_run_ok=True).problem(NOW, NOW) is None


def test_no_success_for_twice_the_interval_is_a_problem():
    late = _job(last_success=NOW - 2 * MINUTE)
    assert late.problem(NOW, NOW - timedelta(days=1)) == (
        "policy_refresh_continuous_aggregate on vitals_1m has not succeeded since 2026-12-03 11:58 UTC"
        " (it should every 1 min)")
    assert _job(last_success=NOW - 2 * MINUTE + timedelta(seconds=1)).problem(NOW, NOW) is None


def test_a_job_that_never_ran_is_a_problem_only_twice_its_interval_after_the_watch_began():
    never = _job(last_success=None, interval=timedelta(days=1), proc_name="policy_retention", target="bed_samples")
    assert never.due(NOW)
    assert never.problem(NOW, NOW - timedelta(hours=47)) is None
    assert never.problem(NOW, NOW - timedelta(hours=48)) == (
        "policy_retention on bed_samples has not succeeded ever (it should every 1 d)")


def test_run_jobs_on_plain_postgresql_says_there_are_none(database_url, monkeypatch, capsys):
    with psycopg.connect(database_url) as conn:
        if current_flavour(conn) is not Flavour.PLAIN:
            pytest.skip("this session's database is TimescaleDB: test_timescale.py runs the jobs")
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    assert main(["telemetry", "run-jobs"]) == 0
    assert "plain PostgreSQL: there are no TimescaleDB jobs" in capsys.readouterr().out
