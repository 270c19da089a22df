-- A request's commands, read with the request on every answer of the API (a provider accepting,
-- en route, arrived, complete) and on the console's request pages. Without an index each of those
-- read the whole outbox, which gains a row per command for good: at 75,000 rows (a day of
-- bench.load's city) that was 30,000 full scans, the press path's commits waiting behind them.
CREATE INDEX IF NOT EXISTS outbox_request ON dispatch.outbox (request_id) WHERE request_id IS NOT NULL;
