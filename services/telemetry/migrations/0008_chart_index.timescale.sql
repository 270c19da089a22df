-- The resident page's 24-hour chart reads a bed's 1,440 minutes from vitals_1m. The refresh
-- policy materializes a minute of every bed at a time, so one bed's minutes lie on as many heap
-- pages as there are minutes: a first look at a resident read ~170 pages (bench.charts). An
-- index that carries the chart's columns answers it from ~25 index pages (an index-only scan;
-- the chunks' visibility maps are set by autovacuum), whatever the heap's order. It replaces
-- vitals_1m_device, whose (device_id, bucket) it also covers (and vitals_1h_chart vitals_1h_device). Building it on a month of 1,000
-- beds took two minutes (bench.charts); the refresh policy waits meanwhile.
CREATE INDEX IF NOT EXISTS vitals_1m_chart ON telemetry.vitals_1m (device_id, bucket)
    INCLUDE (samples, occupied_samples, heart_rate_count, heart_rate_sum, heart_rate_min, heart_rate_max,
             respiration_rate_count, respiration_rate_sum, respiration_rate_min, respiration_rate_max,
             movement_sum, movement_max);

-- The 7-day chart reads a bed's 168 hours from vitals_1h the same way; a first look read each
-- from a page of its own (p95 27 ms from a cold cache, bench.charts run 3).
CREATE INDEX IF NOT EXISTS vitals_1h_chart ON telemetry.vitals_1h (device_id, bucket)
    INCLUDE (samples, occupied_samples, heart_rate_count, heart_rate_sum, heart_rate_min, heart_rate_max,
             respiration_rate_count, respiration_rate_sum, respiration_rate_min, respiration_rate_max,
             movement_sum, movement_max);

DO $$
DECLARE
    view text;
    schema_name name;
BEGIN
    FOREACH view IN ARRAY ARRAY['vitals_1m', 'vitals_1h'] LOOP
        SELECT materialization_hypertable_schema INTO schema_name
        FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = 'telemetry' AND view_name = view;
        EXECUTE format('DROP INDEX IF EXISTS %I.%I', schema_name, view || '_device');
        -- 0004's (resident_id, bucket) twins the (resident_id, bucket DESC) index TimescaleDB
        -- gives every group-by column of an aggregate: one is enough to keep up to date.
        EXECUTE format('DROP INDEX IF EXISTS %I.%I', schema_name, view || '_resident');
    END LOOP;
END $$;
