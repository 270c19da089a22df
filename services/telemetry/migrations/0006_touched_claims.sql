-- Touched minutes the analysis worker has taken out of touched_minutes and not finished yet. It
-- moves markers here in a short transaction of its own, so ingest never waits for a recompute
-- or the rules; it deletes its claims in the transaction that recomputes and runs the rules.
-- Only the holder of the analysis lock uses this table, so claims found here when a pass starts
-- were left by a pass that failed or crashed: they are done again first, and no minute is lost.
CREATE TABLE IF NOT EXISTS telemetry.touched_claims (
    device_id  text        NOT NULL,
    minute     timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, minute)
);
