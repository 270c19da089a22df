-- Bed samples on plain PostgreSQL: declaratively range-partitioned by ts, one partition per UTC
-- day, created ahead of time by telemetry.ensure_bed_sample_partitions (called here and by the
-- service). A DEFAULT partition catches anything outside them, so no sample is ever refused.
CREATE SCHEMA IF NOT EXISTS telemetry;

CREATE TABLE IF NOT EXISTS telemetry.bed_samples (
    ts                timestamptz NOT NULL,
    device_id         text        NOT NULL,
    resident_id       text        NOT NULL,
    occupied          boolean     NOT NULL,
    heart_rate        smallint,
    respiration_rate  smallint,
    movement          real        NOT NULL,
    PRIMARY KEY (device_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS telemetry.bed_samples_default
    PARTITION OF telemetry.bed_samples DEFAULT;

-- Creates the daily partitions [first_day, first_day + days) that do not exist yet; returns how
-- many it created. Rows of those days already in the DEFAULT partition are moved into the new
-- partition in the same transaction (attaching would fail otherwise). Idempotent, and safe to
-- run from several replicas at once (an advisory lock serialises them).
CREATE OR REPLACE FUNCTION telemetry.ensure_bed_sample_partitions(first_day date, days int)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    day      date;
    part     text;
    lo       timestamptz;
    hi       timestamptz;
    created  int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry.bed_samples partitions'));
    FOR i IN 0 .. days - 1 LOOP
        day := first_day + i;
        part := 'bed_samples_' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('telemetry.%I', part)) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format(
            'CREATE TABLE telemetry.%I (LIKE telemetry.bed_samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
            part);
        -- Writers routing rows into DEFAULT must wait while rows of this day move out of it.
        LOCK TABLE telemetry.bed_samples_default IN ACCESS EXCLUSIVE MODE;
        EXECUTE format(
            'WITH moved AS (DELETE FROM telemetry.bed_samples_default WHERE ts >= $1 AND ts < $2 RETURNING *)'
            ' INSERT INTO telemetry.%I SELECT * FROM moved', part)
            USING lo, hi;
        EXECUTE format(
            'ALTER TABLE telemetry.bed_samples ATTACH PARTITION telemetry.%I FOR VALUES FROM (%L) TO (%L)',
            part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- The past week (devices may send samples up to 7 days old) and the next days.
SELECT telemetry.ensure_bed_sample_partitions(((now() AT TIME ZONE 'UTC')::date - 7), 11);
