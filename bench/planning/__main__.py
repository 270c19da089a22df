"""`python -m bench.planning`: a district day of planned care beside presses.

500 residents with care plans (bench/planning/world.py) and 40 providers with shifts, services and
skills; the day's planned visits routed by the product's `plan_day` (OR-Tools) against the
nearest-next `greedy_day` and the bound `travel_bound`; then the day simulated twice with the same
presses, fleet and answers (bench/planning/day.py): WITH the routes (presses matched by the
product's route-aware `rank()` and inserted at `Scored.position`) and WITHOUT plans. Finally the
day as executed is planned again offline, every press known in advance (`plan_day` of the same
visits, each press a visit between its press and its arrival or arrival target): the yardstick of
its driving. Writes bench/results/<date>-planning[-N].json and prints a table.

Targets (issue 16): >= 98 % of planned visits started inside their window; driving per visit of
the day as executed within 1.2 x the offline plan of the same visits; mean press -> arrival with
plans no more than 10 % above without.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench.dispatch import results
from bench.dispatch import world as city
from services.dispatch.domain.matching import MatchWeights
from services.dispatch.domain.planner import greedy_day, plan_day, travel_bound
from services.dispatch.domain.plans import DayPlan, PlannedVisit
from services.dispatch.domain.policy import DispatchPolicy

from . import world
from .day import Day, Outcome

RESULTS = Path(__file__).resolve().parent.parent / "results"
ON_TIME_TARGET, TRAVEL_TARGET, ARRIVAL_TARGET = 0.98, 1.2, 1.10
PRESS_DRIVE_MINUTES = 8.0  # an average drive to a press, for the hourly load (as bench.dispatch's)


def _served(plan: DayPlan) -> int:
    return sum(len(stops) for stops in plan.routes.values())


def _plan_summary(plan: DayPlan, seconds: float) -> dict:
    served = _served(plan)
    return {
        "solver": plan.solver, "visits": served, "unplanned": len(plan.unplanned),
        "unplanned_reasons": {r: list(plan.unplanned.values()).count(r) for r in sorted(set(plan.unplanned.values()))},
        "travel_min": round(plan.travel_minutes, 1),
        "travel_per_visit_min": round(plan.travel_minutes / served, 2) if served else None,
        "bound_min": round(plan.bound_minutes or 0.0, 1), "seconds": round(seconds, 1),
    }


def _legs(plan: DayPlan) -> float:
    """The plan's driving into its visits (its travel without the ways home)."""
    return sum(s.travel_minutes for stops in plan.routes.values() for s in stops)


def _timed(fn, *args, **kwargs) -> tuple[DayPlan, float]:
    started = time.monotonic()
    return fn(*args, **kwargs), time.monotonic() - started


def executed_visits(district: world.District, plan: DayPlan | None, outcome: Outcome) -> list[PlannedVisit]:
    """The visits the day with plans did, as the offline planner sees them: the planned ones as
    planned; each press as a visit that may start from its press until its arrival as executed
    (the same service: the offline plan may not reach anyone later than the day did), lasting what
    it really took."""
    routes = plan.routes.values() if plan is not None else ()
    planned = [s.visit for stops in routes for s in stops if s.visit.key in outcome.planned_start]
    presses = []
    for spec in district.presses:
        arrived = outcome.press_arrival.get(spec.id)
        if arrived is None:
            continue
        presses.append(PlannedVisit(
            f"press-{spec.id}", world.DAY, spec.resident.id, spec.service.value, spec.created, arrived,
            max(1, math.ceil(spec.service_minutes)), spec.location, district=spec.resident.district))
    return planned + presses


def hourly_load(district: world.District, plan: DayPlan) -> dict[str, list[float]]:
    """Per hour of the day, work asked over provider-minutes on shift: the presses (each its time
    on site plus an average drive, as bench.dispatch's `offered_load`, in the hour it is pressed)
    and the planned visits (each its drive and time on site as planned, in the hours they take)."""
    pressed, planned = [0.0] * 24, [0.0] * 24
    for spec in district.presses:
        pressed[spec.created.hour] += spec.service_minutes + PRESS_DRIVE_MINUTES
    for stops in plan.routes.values():
        for stop in stops:
            t = stop.start - timedelta(minutes=stop.travel_minutes)
            while t < stop.end:
                nxt = min(stop.end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
                if t.date() == world.DAY:
                    planned[t.hour] += (nxt - t).total_seconds() / 60
                t = nxt
    on = [sum(max(0.0, (min(p.shift_end, h1) - max(p.shift_start, h0)).total_seconds() / 60)
              for p in district.providers)
          for h0, h1 in ((city.DAY0 + timedelta(hours=h), city.DAY0 + timedelta(hours=h + 1)) for h in range(24))]
    day = [h for h in range(24) if 7 <= h < 22]  # the day shifts' hours (the night crew is few)
    on_day = sum(on[h] for h in day)
    return {"day_7_to_22h": {"presses": round(sum(pressed[h] for h in day) / on_day, 2),
                             "presses_and_plans": round(sum(pressed[h] + planned[h] for h in day) / on_day, 2)},
            "presses": [round(x / m, 2) if m else 0.0 for x, m in zip(pressed, on, strict=True)],
            "presses_and_plans": [round((x + y) / m, 2) if m else 0.0
                                  for x, y, m in zip(pressed, planned, on, strict=True)],
            "providers_on_shift": [round(m / 60, 1) for m in on]}


def run(seed: int, residents: int, providers: int, press_load: float, time_limit_s: float,
        meal_share: float = world.MEAL_SHARE, buffer_minutes: float = 0.0, reserve_share: float = 0.0,
        weights: MatchWeights | None = None) -> dict:
    weights, policy = weights or MatchWeights(), DispatchPolicy.default()
    district = world.district(seed, residents, providers, press_load, meal_share)
    speed = weights.speed_kmh
    plan, plan_s = _timed(plan_day, world.DAY, district.visits, district.workers, speed_kmh=speed,
                          time_limit_s=time_limit_s, buffer_minutes=buffer_minutes, reserve_share=reserve_share)
    greedy, greedy_s = _timed(greedy_day, world.DAY, district.visits, district.workers, speed_kmh=speed)
    answers = city.Responses(seed)
    until = city.DAY0 + timedelta(days=2)
    started = time.monotonic()
    with_plans = Day(district.providers, district.presses, plan, answers, weights, policy).run(until)
    without = Day(district.providers, district.presses, None, answers, weights, policy).run(until)
    simulate_s = time.monotonic() - started

    # Planned visits as executed.
    windows = {s.visit.key: s.visit for stops in plan.routes.values() for s in stops}
    late = {k: (start - windows[k].latest).total_seconds() / 60
            for k, start in with_plans.planned_start.items() if start > windows[k].latest}
    started_visits = len(with_plans.planned_start)
    on_time = (started_visits - len(late)) / len(windows) if windows else 1.0

    # Presses: the same presses, both days.
    specs = district.presses
    arrivals_with, arrivals_without = with_plans.press_arrival, without.press_arrival
    arrival_ratio = results.ratio(specs, arrivals_with, arrivals_without)
    both = [x for x in specs if x.id in arrivals_with and x.id in arrivals_without]

    # The day as executed against the offline plan of the same visits (travel alone: no buffer,
    # every press is known).
    executed = executed_visits(district, plan, with_plans)
    hindsight, hindsight_s = _timed(plan_day, world.DAY, executed, district.workers, speed_kmh=speed,
                                    time_limit_s=time_limit_s)
    # The same yardstick for the day without plans (presses alone): what online dispatch drives
    # over its own offline plan, with no planned visit in the way.
    alone, alone_s = _timed(plan_day, world.DAY, executed_visits(district, None, without), district.workers,
                            speed_kmh=speed, time_limit_s=time_limit_s)
    alone_per_visit = without.driven_minutes / len(arrivals_without) if arrivals_without else None
    alone_offline = alone.travel_minutes / _served(alone) if _served(alone) else None
    done = started_visits + len(arrivals_with)
    executed_per_visit = with_plans.driven_minutes / done if done else None
    hindsight_per_visit = hindsight.travel_minutes / _served(hindsight) if _served(hindsight) else None
    bound_all = travel_bound(executed, district.workers, speed_kmh=speed)
    travel_ratio = (round(executed_per_visit / hindsight_per_visit, 3)
                    if executed_per_visit and hindsight_per_visit else None)
    return {
        "seed": seed, "buffer_minutes": buffer_minutes, "on_call": sorted(plan.on_call),
        "plans": len(district.plans),
        "planned_visits": len(district.visits),
        "planned_by_service": {s: sum(1 for v in district.visits if v.service == s)
                               for s in sorted({v.service for v in district.visits})},
        "presses": len(specs),
        "offline_plan": _plan_summary(plan, plan_s),
        "greedy": _plan_summary(greedy, greedy_s),
        "plan_over_bound": round(plan.travel_minutes / plan.bound_minutes, 3) if plan.bound_minutes else None,
        "greedy_over_plan_per_visit": round((greedy.travel_minutes / _served(greedy))
                                            / (plan.travel_minutes / _served(plan)), 3)
        if _served(greedy) and _served(plan) and plan.travel_minutes else None,
        "executed": {
            "planned_started": started_visits, "planned_in_plan": len(windows),
            "planned_on_time_share": round(on_time, 4),
            "planned_late": len(late), "planned_missed": len(windows) - started_visits,
            "late_minutes_max": round(max(late.values()), 1) if late else 0.0,
            "late_minutes_mean": round(statistics.fmean(late.values()), 1) if late else 0.0,
            "presses_arrived": len(arrivals_with), "visits_done": done,
            "travel_min": round(with_plans.driven_minutes, 1),
            "travel_per_visit_min": round(executed_per_visit, 2) if executed_per_visit else None,
            "offers": with_plans.offers, "assigned_by_hand": with_plans.by_hand,
            "routine_press_positions": {str(p): with_plans.positions.count(p)
                                        for p in sorted(set(with_plans.positions))},
            "emergencies_that_made_planned_visits_late": with_plans.emergencies_making_late,
        },
        "hindsight_plan": {**_plan_summary(hindsight, hindsight_s), "visits_asked": len(executed),
                           "bound_all_visits_min": round(bound_all, 1)},
        "executed_over_hindsight_per_visit": travel_ratio,
        "executed_over_bound": round(with_plans.driven_minutes / bound_all, 3) if bound_all else None,
        "press_arrival_with_plans": results.summary(specs, arrivals_with),
        "press_arrival_without_plans": results.summary(specs, arrivals_without),
        "press_travel_without_plans_min": round(without.driven_minutes, 1),
        "without_plans_offline": {**_plan_summary(alone, alone_s), "visits_asked": len(arrivals_without)},
        # The travel target's floor: the day without plans, per press, over its own offline plan.
        "without_plans_executed_over_offline_per_visit": round(alone_per_visit / alone_offline, 3)
        if alone_per_visit and alone_offline else None,
        "hourly_load": hourly_load(district, plan),
        # The legs into planned visits as driven (after a press: from the press) against the plan's.
        "planned_legs_executed_over_plan": round(with_plans.driven_to_planned_minutes / _legs(plan), 3)
        if _legs(plan) else None,
        # The planned day as executed, net of what the presses cost alone (the day without plans).
        "executed_net_of_presses_over_offline_plan": round(
            (with_plans.driven_minutes - without.driven_minutes) / plan.travel_minutes, 3)
        if plan.travel_minutes else None,
        "press_arrival_ratio": arrival_ratio,
        "sums": {  # for pooling days
            "planned": len(windows), "on_time": started_visits - len(late),
            "executed_travel": with_plans.driven_minutes, "executed_visits": done,
            "hindsight_travel": hindsight.travel_minutes, "hindsight_visits": _served(hindsight),
            "alone_travel": without.driven_minutes, "alone_visits": len(arrivals_without),
            "alone_offline_travel": alone.travel_minutes, "alone_offline_visits": _served(alone),
            "presses_both": len(both),
            "press_minutes_with": sum(results.minutes(arrivals_with[x.id], x.created) for x in both),
            "press_minutes_without": sum(results.minutes(arrivals_without[x.id], x.created) for x in both),
        },
        "simulate_s": round(simulate_s, 1),
    }


def pooled(days: list[dict]) -> dict:
    """The targets' numbers over every simulated day."""
    t = {k: sum(d["sums"][k] for d in days) for k in days[0]["sums"]}
    executed = t["executed_travel"] / t["executed_visits"] if t["executed_visits"] else None
    hindsight = t["hindsight_travel"] / t["hindsight_visits"] if t["hindsight_visits"] else None
    alone = t["alone_travel"] / t["alone_visits"] if t["alone_visits"] else None
    alone_offline = t["alone_offline_travel"] / t["alone_offline_visits"] if t["alone_offline_visits"] else None
    return {
        "planned_on_time_share": round(t["on_time"] / t["planned"], 4) if t["planned"] else 1.0,
        "without_plans_executed_over_offline_per_visit": round(alone / alone_offline, 3)
        if alone and alone_offline else None,
        "executed_over_hindsight_per_visit": round(executed / hindsight, 3) if executed and hindsight else None,
        "press_arrival_ratio": round(t["press_minutes_with"] / t["press_minutes_without"], 3)
        if t["press_minutes_without"] else None,
        "press_arrival_mean_with_min": round(t["press_minutes_with"] / t["presses_both"], 2)
        if t["presses_both"] else None,
        "press_arrival_mean_without_min": round(t["press_minutes_without"] / t["presses_both"], 2)
        if t["presses_both"] else None,
    }


def verdict(pool: dict) -> dict:
    on_time = pool["planned_on_time_share"]
    travel = pool["executed_over_hindsight_per_visit"]
    arrival = pool["press_arrival_ratio"]
    return {
        "planned_on_time": {"value": on_time, "target": f">= {ON_TIME_TARGET}", "met": on_time >= ON_TIME_TARGET},
        "travel_executed_over_offline_plan": {"value": travel, "target": f"<= {TRAVEL_TARGET}",
                                              "met": travel is not None and travel <= TRAVEL_TARGET},
        "press_arrival_with_over_without": {"value": arrival, "target": f"<= {ARRIVAL_TARGET}",
                                            "met": arrival is not None and arrival <= ARRIVAL_TARGET},
    }


def table(result: dict) -> str:
    return "\n\n".join([*(_day_table(d) for d in result["days"]), _pool_table(result)])


def _pool_table(result: dict) -> str:
    p = result["pooled"]
    lines = [f"pooled over {len(result['days'])} day(s): on time {p['planned_on_time_share']:.2%}, executed / offline"
             f" per visit {p['executed_over_hindsight_per_visit']} (without plans"
             f" {p['without_plans_executed_over_offline_per_visit']}), press -> arrival"
             f" {p['press_arrival_mean_with_min']} / {p['press_arrival_mean_without_min']} min"
             f" = {p['press_arrival_ratio']}"]
    lines += [f"{name}: {'met' if v['met'] else 'MISSED'} ({v['value']} {v['target']})"
              for name, v in result["verdict"].items()]
    return "\n".join(lines)


def _day_table(d: dict) -> str:
    ex, plan, greedy, hind = d["executed"], d["offline_plan"], d["greedy"], d["hindsight_plan"]
    w, wo = d["press_arrival_with_plans"], d["press_arrival_without_plans"]
    rows = [
        ("seed (day) / buffer", f"{d['seed']} / {d['buffer_minutes']} min"),
        ("planned visits (day) / presses", f"{d['planned_visits']} / {d['presses']}"),
        ("offline plan: travel, per visit, unplanned",
         f"{plan['travel_min']} min, {plan['travel_per_visit_min']} min, {plan['unplanned']}"),
        ("greedy rota: travel, per visit, unplanned",
         f"{greedy['travel_min']} min, {greedy['travel_per_visit_min']} min, {greedy['unplanned']}"),
        ("bound (assignment relaxation) / plan over bound", f"{plan['bound_min']} min / {d['plan_over_bound']}"),
        ("planned visits started in window", f"{ex['planned_on_time_share']:.2%} ({ex['planned_late']} late, "
                                             f"{ex['planned_missed']} missed, max {ex['late_minutes_max']} min)"),
        ("executed: travel, per visit", f"{ex['travel_min']} min, {ex['travel_per_visit_min']} min"),
        ("offline plan of the same visits: per visit",
         f"{hind['travel_per_visit_min']} min ({hind['unplanned']} of {hind['visits_asked']} left out)"),
        ("executed / offline per visit (target <= 1.2)", d["executed_over_hindsight_per_visit"]),
        ("the same for the day without plans (presses alone)", d["without_plans_executed_over_offline_per_visit"]),
        ("executed - presses alone, over the offline plan", d["executed_net_of_presses_over_offline_plan"]),
        ("legs into planned visits, driven over planned", d["planned_legs_executed_over_plan"]),
        ("executed over the bound of the same visits", d["executed_over_bound"]),
        ("press -> arrival mean with / without plans", f"{w['mean_arrival_min']} / {wo['mean_arrival_min']} min"),
        ("press -> arrival p90 with / without", f"{w['p90_arrival_min']} / {wo['p90_arrival_min']} min"),
        ("press -> arrival ratio (target <= 1.10)", d["press_arrival_ratio"]),
        ("load 7-22h, presses alone / and plans", "{presses} / {presses_and_plans}".format(
            **d["hourly_load"]["day_7_to_22h"])),
        ("load, presses alone: peak hours", _peaks(d["hourly_load"]["presses"])),
        ("load, presses and plans: peak hours", _peaks(d["hourly_load"]["presses_and_plans"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _peaks(load: list[float], count: int = 4) -> str:
    """The busiest hours of a day's load, as "7h 1.10, 12h 0.97, ..."."""
    top = sorted(range(len(load)), key=lambda h: (-load[h], h))[:count]
    return ", ".join(f"{h}h {load[h]:.2f}" for h in top)


def output_path(folder: Path, day: str) -> Path:
    """bench/results/<date>-planning-<n>.json, n counting the runs of that date."""
    n = 1
    while (folder / f"{day}-planning-{n}.json").exists():
        n += 1
    return folder / f"{day}-planning-{n}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.planning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first day")
    parser.add_argument("--days", type=int, default=3, help="simulated days, one seed each (default 3)")
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--providers", type=int, default=40)
    parser.add_argument("--press-load", type=float, default=1.0,
                        help="presses as a share of bench.dispatch's nominal volume (default 1.0: the usual presses)")
    parser.add_argument("--meal-share", type=float, default=world.MEAL_SHARE,
                        help=f"residents with a daily lunch meal (default {world.MEAL_SHARE})")
    parser.add_argument("--buffer", type=float, default=0.0,
                        help="plan_day's buffer_minutes: room kept at the end of windows for presses (default 0)")
    parser.add_argument("--reserve", type=float, default=0.0,
                        help="plan_day's reserve_share: share of each shift kept on call for presses (default 0)")
    parser.add_argument("--margin", type=float, default=MatchWeights().plan_margin_minutes,
                        help="MatchWeights.plan_margin_minutes: room a press must leave before a planned visit's "
                             "window ends")
    parser.add_argument("--route-minutes", type=float, default=MatchWeights().route_minutes,
                        help="MatchWeights.route_minutes: cost of a press that moves planned visits")
    parser.add_argument("--time-limit", type=float, default=20.0,
                        help="solver time limit per plan, seconds (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON result")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    weights = MatchWeights(plan_margin_minutes=args.margin, route_minutes=args.route_minutes)
    days = [run(seed, args.residents, args.providers, args.press_load, args.time_limit, args.meal_share, args.buffer,
                args.reserve, weights)
            for seed in range(args.seed, args.seed + args.days)]
    result = {
        "benchmark": "planning", "date": date.today().isoformat(),
        "setup": {"first_seed": args.seed, "days": args.days, "residents": args.residents, "providers": args.providers,
                  "press_load": args.press_load, "solver_time_limit_s": args.time_limit,
                  "buffer_minutes": args.buffer, "reserve_share": args.reserve,
                  "plan_margin_minutes": args.margin, "route_minutes": args.route_minutes,
                  "shares": {"meal_daily": args.meal_share, "bath": world.BATH_SHARE,
                             "mobility": world.MOBILITY_SHARE, "escort_today": world.ESCORT_SHARE},
                  "provider_answers": "accept 90%, decline 6%, no answer 4%; answer time lognormal, median 20 s"},
        "pooled": pooled(days),
        "days": days,
    }
    result["verdict"] = verdict(result["pooled"])
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"] = results.machine()
    args.out.mkdir(parents=True, exist_ok=True)
    path = output_path(args.out, result["date"])
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(table(result))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
