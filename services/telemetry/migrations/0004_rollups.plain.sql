-- Rollups on plain PostgreSQL: one row per bed, bucket and resident (a bed handed to another
-- resident keeps their data apart), kept current by the service's analysis worker, which
-- recomputes touched buckets from the raw rows (1m) and from the 1m rows (1h). Sums and counts
-- are stored, not averages, so an hour is exactly the sum of its minutes.
CREATE TABLE IF NOT EXISTS telemetry.vitals_1m (
    device_id              text        NOT NULL,
    bucket                 timestamptz NOT NULL,
    resident_id            text        NOT NULL,
    samples                bigint      NOT NULL,
    occupied_samples       bigint      NOT NULL,
    heart_rate_count       bigint      NOT NULL,
    heart_rate_sum         bigint,
    heart_rate_min         smallint,
    heart_rate_max         smallint,
    respiration_rate_count bigint      NOT NULL,
    respiration_rate_sum   bigint,
    respiration_rate_min   smallint,
    respiration_rate_max   smallint,
    movement_sum           numeric     NOT NULL,
    movement_max           real        NOT NULL,
    PRIMARY KEY (device_id, bucket, resident_id)
);
CREATE INDEX IF NOT EXISTS vitals_1m_resident ON telemetry.vitals_1m (resident_id, bucket);

CREATE TABLE IF NOT EXISTS telemetry.vitals_1h (LIKE telemetry.vitals_1m INCLUDING ALL);
CREATE INDEX IF NOT EXISTS vitals_1h_resident ON telemetry.vitals_1h (resident_id, bucket);

-- Retention: drops the daily partitions that end on or before `before` (and deletes older rows
-- that sit in DEFAULT); returns how many partitions it dropped. Serialised with partition
-- creation by the same advisory lock.
CREATE OR REPLACE FUNCTION telemetry.drop_bed_sample_partitions(before date)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    part     record;
    dropped  int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('telemetry.bed_samples partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'telemetry.bed_samples'::regclass
          AND n.nspname = 'telemetry'
          AND c.relname ~ '^bed_samples_[0-9]{8}$'
          AND to_date(substr(c.relname, 13), 'YYYYMMDD') + 1 <= before
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE telemetry.%I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM telemetry.bed_samples_default WHERE ts < (before::timestamp AT TIME ZONE 'UTC');
    RETURN dropped;
END
$$;
