"""bench.planning runs end to end on a tiny district (a handful of residents and providers, short
solver limits) and its numbers hang together: every planned visit of the plan accounted for, the
same presses compared with and without plans, the result written where the runner says. No
database needed."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ortools")

from bench.planning import __main__ as bench  # noqa: E402
from bench.planning import world  # noqa: E402


def test_the_benchmark_runs_on_a_tiny_district(tmp_path, capsys):
    assert bench.main(["--residents", "40", "--providers", "8", "--days", "1", "--time-limit", "1",
                       "--out", str(tmp_path)]) == 0
    [path] = list(tmp_path.glob("*-planning-1.json"))
    result = json.loads(path.read_text())
    [day] = result["days"]
    ex = day["executed"]
    assert day["planned_visits"] == day["offline_plan"]["visits"] + day["offline_plan"]["unplanned"]
    assert ex["planned_started"] + ex["planned_missed"] == ex["planned_in_plan"] == day["offline_plan"]["visits"]
    assert 0 <= ex["planned_on_time_share"] <= 1
    assert day["offline_plan"]["bound_min"] <= day["offline_plan"]["travel_min"] + 1e-6
    assert day["press_arrival_with_plans"]["requests"] == day["press_arrival_without_plans"]["requests"] \
        == day["presses"]
    # The yardsticks' context: the load hour by hour (plans only add to the presses) and the travel
    # ratio of the day without plans against its own offline plan.
    load = day["hourly_load"]
    assert len(load["presses"]) == len(load["presses_and_plans"]) == 24
    assert all(both >= alone for alone, both in zip(load["presses"], load["presses_and_plans"], strict=True))
    assert day["without_plans_offline"]["visits_asked"] == day["press_arrival_without_plans"]["arrived"]
    assert set(result["verdict"]) == {"planned_on_time", "travel_executed_over_offline_plan",
                                      "press_arrival_with_over_without"}
    assert "press -> arrival" in capsys.readouterr().out
    # A second run of the same date gets its own file.
    assert bench.output_path(tmp_path, result["date"]).name == f"{result['date']}-planning-2.json"


def test_the_district_is_the_product_s_own_plans_and_fleet():
    district = world.district(3, residents=60, providers=8)
    assert {p.resident_id for p in district.plans} <= {r.id for r in district.residents}
    assert all(v.location is not None for v in district.visits)
    assert {w.provider_id for w in district.workers} == {p.id for p in district.providers}
    assert any(w.skills for w in district.workers)
    assert district.presses  # the usual presses of bench.dispatch's generator
