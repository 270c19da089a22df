-- Rollups on TimescaleDB: continuous aggregates with the same names and columns as the plain
-- tables (so the same queries work), the hour built on the minute (hierarchical, 2.9+), both
-- real-time (materialized_only = false) so the newest minutes are included. Refresh,
-- compression and retention policies get their configured values from the service at start
-- (services/telemetry/timescale.py); the ones here are the documented defaults.
CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry.vitals_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 minute', ts) AS bucket,
       resident_id,
       count(*) AS samples,
       sum(occupied::int) AS occupied_samples,
       count(heart_rate) AS heart_rate_count,
       sum(heart_rate) AS heart_rate_sum,
       min(heart_rate) AS heart_rate_min,
       max(heart_rate) AS heart_rate_max,
       count(respiration_rate) AS respiration_rate_count,
       sum(respiration_rate) AS respiration_rate_sum,
       min(respiration_rate) AS respiration_rate_min,
       max(respiration_rate) AS respiration_rate_max,
       sum(movement::numeric) AS movement_sum,
       max(movement) AS movement_max
FROM telemetry.bed_samples
GROUP BY device_id, time_bucket(INTERVAL '1 minute', ts), resident_id
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry.vitals_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       resident_id,
       sum(samples)::bigint AS samples,
       sum(occupied_samples)::bigint AS occupied_samples,
       sum(heart_rate_count)::bigint AS heart_rate_count,
       sum(heart_rate_sum)::bigint AS heart_rate_sum,
       min(heart_rate_min) AS heart_rate_min,
       max(heart_rate_max) AS heart_rate_max,
       sum(respiration_rate_count)::bigint AS respiration_rate_count,
       sum(respiration_rate_sum)::bigint AS respiration_rate_sum,
       min(respiration_rate_min) AS respiration_rate_min,
       max(respiration_rate_max) AS respiration_rate_max,
       sum(movement_sum) AS movement_sum,
       max(movement_max) AS movement_max
FROM telemetry.vitals_1m
GROUP BY device_id, time_bucket(INTERVAL '1 hour', bucket), resident_id
WITH NO DATA;

CREATE INDEX IF NOT EXISTS vitals_1m_device ON telemetry.vitals_1m (device_id, bucket);
CREATE INDEX IF NOT EXISTS vitals_1m_resident ON telemetry.vitals_1m (resident_id, bucket);
CREATE INDEX IF NOT EXISTS vitals_1h_device ON telemetry.vitals_1h (device_id, bucket);
CREATE INDEX IF NOT EXISTS vitals_1h_resident ON telemetry.vitals_1h (resident_id, bucket);

-- Samples may arrive up to 7 days late: the minute aggregate refreshes that far back.
SELECT add_continuous_aggregate_policy('telemetry.vitals_1m',
    start_offset => INTERVAL '8 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
SELECT add_continuous_aggregate_policy('telemetry.vitals_1h',
    start_offset => INTERVAL '8 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE);

ALTER TABLE telemetry.bed_samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('telemetry.bed_samples', INTERVAL '7 days', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry.bed_samples', INTERVAL '90 days', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry.vitals_1m', INTERVAL '730 days', if_not_exists => TRUE);
SELECT add_retention_policy('telemetry.vitals_1h', INTERVAL '3650 days', if_not_exists => TRUE);

-- Retention is Timescale's policy here; the service's call does nothing.
CREATE OR REPLACE FUNCTION telemetry.drop_bed_sample_partitions(before date)
RETURNS int
LANGUAGE sql
AS $$ SELECT 0 $$;
