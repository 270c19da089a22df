"""`python -m bench.dispatch`: simulated days of dispatch through the product's own use cases,
compared with an offline reference (every request known in advance, routed by OR-Tools and an
exact search, with a lower bound and the gap), a nearest-available greedy and a per-slice
hindsight heuristic; then press -> first offer through the real running dispatch, broker and
database. Writes bench/results/<date>-dispatch.json and prints a table. See
services/dispatch/README.md, "Benchmark"."""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from services.dispatch.domain.matching import MatchWeights
from services.dispatch.domain.policy import DispatchPolicy

from . import reference, results, world
from .baselines import greedy, hindsight_optimal
from .product import ProductDispatch

RESULTS = Path(__file__).resolve().parent.parent / "results"
TARGET = 1.15  # ours / the reference, pooled


def simulate(days: int, residents: int, providers: int, scale: float, first_seed: int, reference_s: float) -> dict:
    """Every policy over `days` simulated days (one seed each), pooled."""
    policy, weights = DispatchPolicy.default(), MatchWeights()
    names = ("ours", "instant", "greedy", "slices", "slices_instant", "reference", "reference_instant")
    pooled: dict[str, dict] = {name: {} for name in names}
    specs_all: list[world.RequestSpec] = []
    outcomes_all: dict = {}
    bounds = {"reference": [], "reference_instant": []}  # (lower bound on the mean, requests served) per day
    per_day = []
    for seed in range(first_seed, first_seed + days):
        rng = random.Random(seed)
        people = world.residents(residents, rng)
        fleet = world.providers(providers, rng)
        specs = [world.RequestSpec(f"d{seed}-{s.id}", s.resident, s.service, s.created, s.service_minutes)
                 for s in world.requests(people, rng, scale)]
        human, instant = world.Responses(seed), world.Responses(seed, instant=True)
        until = world.DAY0 + timedelta(days=2)
        started = time.monotonic()
        outcomes = ProductDispatch(specs, fleet, policy, weights, human, seed).run(until)
        at_once = ProductDispatch(specs, fleet, policy, weights, instant, seed).run(until)
        product_s = time.monotonic() - started
        solved = {"reference": reference.solve(specs, fleet, weights.speed_kmh, human, reference_s),
                  "reference_instant": reference.solve(specs, fleet, weights.speed_kmh, instant, reference_s)}
        arrivals = {
            "ours": results.arrivals_of(outcomes), "instant": results.arrivals_of(at_once),
            "greedy": greedy(specs, fleet, weights.speed_kmh, human),
            "slices": hindsight_optimal(specs, fleet, weights.speed_kmh, human),
            "slices_instant": hindsight_optimal(specs, fleet, weights.speed_kmh, instant),
            **{name: ref.arrivals for name, ref in solved.items()},
        }
        for name, ref in solved.items():
            bounds[name].append((ref.lower_bound_min, len(ref.arrivals)))
        day = {name: results.summary(specs, a) for name, a in arrivals.items()}
        per_day.append({
            "seed": seed, "requests": len(specs),
            "peak_hour_load": round(max(world.offered_load(specs, fleet)), 2),
            **{f"{name}_mean_arrival_min": s["mean_arrival_min"] for name, s in day.items()},
            "optimality_ratio": results.ratio(specs, arrivals["ours"], arrivals["reference"]),
            "optimality_ratio_instant_answers": results.ratio(
                specs, arrivals["instant"], arrivals["reference_instant"]),
            **{f"{name}_lower_bound_min": round(ref.lower_bound_min, 3) for name, ref in solved.items()},
            **{f"{name}_gap": round(ref.gap, 4) for name, ref in solved.items()},
            **{f"{name}_solve_s": round(ref.solve_s, 1) for name, ref in solved.items()},
            **{f"{name}_unserved": ref.dropped for name, ref in solved.items()},
            "product_simulation_s": round(product_s, 1),
            "emergencies": day["ours"]["emergencies"],
            "emergencies_within_45min": day["ours"]["emergencies_within_45min"],
        })
        specs_all += specs
        outcomes_all.update(outcomes)
        for name, a in arrivals.items():
            pooled[name].update(a)
    s = {name: results.summary(specs_all, pooled[name]) for name in names}
    offers = [o.offers for o in outcomes_all.values()]
    reference_mean = s["reference"]["mean_arrival_min"]
    lower = results.pooled_bound(bounds["reference"])
    lower_instant = results.pooled_bound(bounds["reference_instant"])
    return {
        "mean_arrival_min": s["ours"]["mean_arrival_min"],
        "reference_mean_arrival_min": reference_mean,
        "reference_lower_bound_min": round(lower, 3),
        "reference_gap": round((reference_mean - lower) / reference_mean, 4),
        "greedy_mean_arrival_min": s["greedy"]["mean_arrival_min"],
        "slices_mean_arrival_min": s["slices"]["mean_arrival_min"],
        "optimality_ratio": results.ratio(specs_all, pooled["ours"], pooled["reference"]),
        "optimality_ratio_instant_answers": results.ratio(specs_all, pooled["instant"], pooled["reference_instant"]),
        "ratio_to_lower_bound": round(s["ours"]["mean_arrival_min"] / lower, 3),
        "greedy_ratio": results.ratio(specs_all, pooled["greedy"], pooled["reference"]),
        "slices_ratio": results.ratio(specs_all, pooled["slices"], pooled["reference"]),
        "reference_instant": {**s["reference_instant"], "lower_bound_min": round(lower_instant, 3),
                              "gap": round((s["reference_instant"]["mean_arrival_min"] - lower_instant)
                                           / s["reference_instant"]["mean_arrival_min"], 4)},
        "reference_time_limit_s": reference_s,
        "target_ratio": TARGET,
        "emergency_within_45min": round(s["ours"]["emergencies_within_45min"] / s["ours"]["emergencies"], 4)
        if s["ours"]["emergencies"] else None,
        "sla_compliance": results.sla_compliance(outcomes_all, policy),
        "ours": s["ours"], "ours_instant_answers": s["instant"], "greedy": s["greedy"], "reference": s["reference"],
        "slices": s["slices"], "slices_instant_answers": s["slices_instant"],
        "offers_per_request": round(statistics.fmean(offers), 3),
        "escalated": sum(o.escalated for o in outcomes_all.values()),
        "handed_back": sum(o.handed_back for o in outcomes_all.values()),
        "days": per_day,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__)
    parser.add_argument("--days", type=int, default=5, help="simulated days, one seed each (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first day")
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--providers", type=int, default=40)
    parser.add_argument("--load", type=float, default=1.0, help="request volume, 1.0 = nominal")
    parser.add_argument("--reference-s", type=float, default=60.0,
                        help="time limit of the offline reference per day and answer mode (default 60)")
    parser.add_argument("--skip-live", action="store_true", help="only the simulation (no broker, no database)")
    parser.add_argument("--paced", type=int, default=250, help="live: presses sent at --rate")
    parser.add_argument("--rate", type=float, default=10.0, help="live: presses per second")
    parser.add_argument("--burst", type=int, default=100,
                        help="live: presses sent at once afterwards (also a quarter as many, and as many again"
                             " with two replicas)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON result")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    started = time.monotonic()
    result = {
        "benchmark": "dispatch", "date": date.today().isoformat(),
        "setup": {"days": args.days, "first_seed": args.seed, "residents": args.residents,
                  "providers": args.providers, "load": args.load, "shifts": [list(s) for s in world.SHIFTS],
                  "requests_per_resident_per_day": {k.value: v * args.load for k, v in world.NOMINAL_PER_DAY.items()},
                  "provider_answers": "accept 90%, decline 6%, no answer 4%; answer time lognormal, median 20 s"},
    }
    result.update(simulate(args.days, args.residents, args.providers, args.load, args.seed, args.reference_s))
    result["simulation_s"] = round(time.monotonic() - started, 1)
    if not args.skip_live:
        from .live import measure  # needs PostgreSQL and a broker (embedded when not configured)

        live = measure(args.paced, args.rate, args.burst, args.residents, args.providers)
        result["live"] = live
        result["press_to_offer_p50_ms"] = live["paced"]["p50_ms"]
        result["press_to_offer_p99_ms"] = live["paced"]["p99_ms"]
    result["machine"] = results.machine()
    if "live" in result:
        result["machine"]["postgresql"] = result["live"]["postgresql"]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{result['date']}-dispatch.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(results.table(result))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
