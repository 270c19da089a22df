-- Minutes of a bed that received new samples, written by ingest in the same transaction as the
-- samples. The analysis worker claims them (FOR UPDATE SKIP LOCKED, then DELETE): on plain
-- PostgreSQL it recomputes those rollup buckets from the raw rows, on both flavours it runs the
-- sample rules over them. A marker is upserted (not inserted-if-absent) so that a writer whose
-- marker is being claimed waits for the claim to commit and then leaves a new one: samples
-- committed after a recompute always leave a marker behind.
CREATE TABLE IF NOT EXISTS telemetry.touched_minutes (
    device_id  text        NOT NULL,
    minute     timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, minute)
);
CREATE INDEX IF NOT EXISTS touched_minutes_marked ON telemetry.touched_minutes (marked_at);
