"""`python -m bench.charts`: the resident page's charts and the district beds page on weeks of
bed samples, on TimescaleDB and on plain PostgreSQL side by side; writes
bench/results/<date>-charts-<n>.json.

The issue's size is the default: 1,000 beds, 30 days, one sample a second (2.6 billion rows),
raw days compressed after 7 on TimescaleDB. Each shape is loaded once per server into a
database of its own and kept; later runs only top it up to the present.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys

from ..common import machine
from ..common.results import now_iso, numbered, write_result
from ..common.table import print_table
from .load import Shape, prepare
from .run import measure, server, storage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timescale-url", help="a server with TimescaleDB preloaded (its postgres database)")
    parser.add_argument("--plain-url", help="a plain PostgreSQL server (its postgres database)")
    parser.add_argument("--beds", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval-s", type=int, default=1, help="one sample per bed every this many seconds")
    parser.add_argument("--charts", type=int, default=200, help="charts of each kind timed, each on another bed")
    parser.add_argument("--dashboards", type=int, default=50, help="district pages timed")
    parser.add_argument("--workers", type=int, default=2, help="connections loading samples at once")
    parser.add_argument("--seed", type=int, default=None,
                        help="which beds are read (default: new ones each run, so a run does not find the beds"
                             " an earlier one warmed in the cache)")
    args = parser.parse_args(argv)
    if not (args.timescale_url or args.plain_url):
        parser.error("give --timescale-url, --plain-url or both")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("homecare").setLevel(logging.WARNING)
    shape = Shape(args.beds, args.days, args.interval_s)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    body: dict = {"benchmark": "charts", "started": now_iso(), "machine": machine.describe(),
                  "shape": {"beds": shape.beds, "days": shape.days, "interval_s": shape.interval_s,
                            "rows": shape.rows, "compress_after_days": 7}, "seed": seed, "flavours": {}}
    rows = []
    for name, url in (("timescaledb", args.timescale_url), ("plain", args.plain_url)):
        if not url:
            continue
        db_url, flavour, loading = prepare(url, shape, args.workers)
        results = measure(db_url, shape, args.charts, args.dashboards, seed)
        body["flavours"][name] = {"flavour": flavour.value, "server": server(db_url), "loading_s": loading,
                                  "storage": storage(db_url, flavour), "reads_ms": results}
        for read, r in results.items():
            rows.append([name, read, r["n"], r["p50"], r["p95"], r["p99"], r["max"],
                         r.get("target_p95_ms"), r.get("met")])
    body["finished"] = now_iso()
    path = write_result("charts", body, numbered("charts"))
    print_table(f"charts: {shape.beds} beds, {shape.days} days, a sample every {shape.interval_s} s",
                ["flavour", "read", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "target p95", "met"], rows)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
