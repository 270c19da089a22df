"""Press -> acknowledgement hop by hop, from the database of a run: where the time goes.

For each `request.acknowledged` that answered a press (the command's `origin_at` is the
gateway's receipt of the press), with the device's own times from the press event and its ack:
- device -> gateway: the press's `ts` (device clock) to the gateway's receipt (`origin_at`);
- gateway -> dispatch: the receipt to the start of dispatch's transaction (`outbox.created_at`),
  which is the log's store, the consumer's fetch and any wait for a worker or a lock;
- dispatch -> broker: that transaction's start to the broker's PUBACK of the command (`sent_at`),
  which is the transaction, its commit, the NOTIFY and the publisher;
- broker -> device: the PUBACK to the device showing it (the ack's `ts`, device clock).
All clocks are this machine's (the simulator runs here). `python -m bench.load.hops DATABASE_URL
[--since ISO]`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from devices.simulator.stats import summarize

HOPS = ("device_to_gateway", "gateway_to_dispatch", "dispatch_to_broker", "broker_to_device", "total")


def hops(url: str, since: datetime | None = None, until: datetime | None = None) -> dict:
    """Percentiles of each hop (ms) over the presses answered between `since` and `until`."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            # The first command of each request opened by a press: the answer to that press.
            "SELECT * FROM (SELECT DISTINCT ON (o.request_id) o.kind, r.pressed_at, o.origin_at, o.created_at,"
            " o.sent_at, o.acked_at FROM dispatch.outbox o JOIN dispatch.requests r ON r.id = o.request_id"
            " WHERE r.pressed_at IS NOT NULL ORDER BY o.request_id, o.id) first"
            " WHERE kind = 'request.acknowledged' AND origin_at IS NOT NULL AND sent_at IS NOT NULL"
            " AND acked_at IS NOT NULL"
            " AND (%s::timestamptz IS NULL OR origin_at >= %s) AND (%s::timestamptz IS NULL OR origin_at <= %s)",
            (since, since, until, until),
        ).fetchall()
    series: dict[str, list[float]] = {name: [] for name in HOPS}
    for row in rows:
        steps = (row["pressed_at"], row["origin_at"], row["created_at"], row["sent_at"], row["acked_at"])
        for name, (a, b) in zip(HOPS, zip(steps, steps[1:], strict=False), strict=False):
            series[name].append((b - a).total_seconds() * 1000)
        series["total"].append((row["acked_at"] - row["pressed_at"]).total_seconds() * 1000)
    return {name: summarize(values) for name, values in series.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--since", type=datetime.fromisoformat)
    parser.add_argument("--until", type=datetime.fromisoformat)
    args = parser.parse_args()
    print(json.dumps(hops(args.database_url, args.since, args.until), indent=2))


if __name__ == "__main__":
    main()
