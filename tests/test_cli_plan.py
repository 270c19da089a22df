"""`homecare plan --day` plans a day's routes from the care plans, as the API does, and prints
the run; a day that is not one is refused by the argument parser."""

from __future__ import annotations

from datetime import date, time

import pytest

from launch import cli
from services.dispatch.route_queries import routes_of_day
from services.dispatch.usecases import plans
from services.dispatch.usecases.context import Dispatch
from tests.dispatch.harness import new_resident


def test_a_day_is_planned_from_the_command_line(pool, database_url, monkeypatch, capsys):
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    monkeypatch.setenv("HOMECARE_DISPATCH_PLAN_TIME_LIMIT_S", "1")
    day = date(2036, 6, 1)  # nobody else plans this day
    resident = new_resident(pool)
    with pool.connection() as conn:
        plans.create_plan(conn, Dispatch(), resident, {
            "service": "meal", "repeat": "once", "starts_on": day, "window_start": time(11, 30),
            "window_end": time(12, 30), "duration_minutes": 20}, "test")
    assert cli.main(["plan", "--day", day.isoformat()]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{day.isoformat()}: 1 visits, 0 on routes") and "1 unplanned" in out
    with pool.connection() as conn:
        routes = routes_of_day(conn, day)
    assert routes["run"]["actor"] == "cli" and [u["resident_id"] for u in routes["unplanned"]] == [resident]


def test_a_day_that_is_not_one_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["plan", "--day", "tomorrow"])
    assert "not a day like" in capsys.readouterr().err
