"""Press -> acknowledgement hop by hop, from the database of a run: where the platform's time goes.

For each request opened by a press, its first command (`request.acknowledged`), on the
platform's own clock (the simulated devices keep a simulated day's clock, so their own times,
the press's `ts` and the ack's, cannot be compared with the platform's):
- gateway -> dispatch: the gateway's receipt of the press (`origin_at`) to the start of
  dispatch's transaction (`outbox.created_at`): the log's store, the consumer's fetch, any wait for
  a worker or a lock;
- dispatch -> broker: that transaction's start to the publisher's round that had the broker take
  the command (`sent_at`): the transaction, its commit, the NOTIFY, the publisher's previous
  round, and a command held while the device's first connection was not yet known;
- total: the gateway's receipt to `sent_at`;
- `slowest`: the 15 slowest presses, when each was received (epoch seconds) and its two hops.
`python -m bench.load.hops DATABASE_URL [--since ISO] [--until ISO]`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from devices.simulator.stats import summarize

HOPS = ("gateway_to_dispatch", "dispatch_to_broker", "total")
SLOWEST = 15


def hops(url: str, since: datetime | None = None, until: datetime | None = None) -> dict:
    """Percentiles of each hop (ms) over the presses answered between `since` and `until`."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            # The first command of each request opened by a press: the answer to that press.
            "SELECT * FROM (SELECT DISTINCT ON (o.request_id) o.kind, o.origin_at, o.created_at, o.sent_at"
            " FROM dispatch.outbox o JOIN dispatch.requests r ON r.id = o.request_id"
            " WHERE r.pressed_at IS NOT NULL ORDER BY o.request_id, o.id) first"
            " WHERE kind = 'request.acknowledged' AND origin_at IS NOT NULL AND sent_at IS NOT NULL"
            " AND (%s::timestamptz IS NULL OR origin_at >= %s) AND (%s::timestamptz IS NULL OR origin_at <= %s)",
            (since, since, until, until),
        ).fetchall()
    series: dict[str, list[float]] = {name: [] for name in HOPS}
    for row in rows:
        series["gateway_to_dispatch"].append(_ms(row["origin_at"], row["created_at"]))
        series["dispatch_to_broker"].append(_ms(row["created_at"], row["sent_at"]))
        series["total"].append(_ms(row["origin_at"], row["sent_at"]))
    out: dict = {name: summarize(values) for name, values in series.items()}
    # When the slowest were, to set beside what the machine was doing then (the CPU series).
    slowest = sorted(rows, key=lambda r: r["sent_at"] - r["origin_at"], reverse=True)[:SLOWEST]
    out["slowest"] = [{"at": round(r["origin_at"].timestamp(), 3),
                       "gateway_to_dispatch": round(_ms(r["origin_at"], r["created_at"]), 1),
                       "dispatch_to_broker": round(_ms(r["created_at"], r["sent_at"]), 1)} for r in slowest]
    return out


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--since", type=datetime.fromisoformat)
    parser.add_argument("--until", type=datetime.fromisoformat)
    args = parser.parse_args()
    print(json.dumps(hops(args.database_url, args.since, args.until), indent=2))


if __name__ == "__main__":
    main()
