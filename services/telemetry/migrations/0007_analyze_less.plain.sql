-- Statistics when a table's rows have changed as many times as it has rows, not at a tenth
-- (autovacuum_analyze_scale_factor 0.1, the server's default). These tables change by updates of
-- the same rows (every device's last status, newest samples) or grow steadily (a day's samples,
-- the rollups): their statistics hardly move, but at 10,000 devices each of them was analyzed on
-- every one-minute autovacuum pass (server log with log_autovacuum_min_duration = 0, bench.load
-- 2026-12-03 diag 2), ~0.3 CPU s a pass together, and each analyze makes every connection plan
-- its prepared statements on that table again: a second of two busy cores when every press
-- waited longer. Vacuum thresholds are unchanged (dead rows still go every minute).

ALTER TABLE telemetry.latest_samples SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE telemetry.device_status SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE telemetry.vitals_1m SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE telemetry.vitals_1h SET (autovacuum_analyze_scale_factor = 1.0);

-- The daily sample partitions: the ones there are, and the ones made from now on.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'telemetry.bed_samples'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_analyze_scale_factor = 1.0)', part);
    END LOOP;
END
$$;

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
            'CREATE TABLE telemetry.%I (LIKE telemetry.bed_samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
            ' WITH (autovacuum_analyze_scale_factor = 1.0)',
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
