-- Every device's row is updated as it comes and goes: statistics when the rows have changed as
-- many times as there are rows, not at a tenth (see telemetry's 0007_analyze_less).
ALTER TABLE gateway.devices SET (autovacuum_analyze_scale_factor = 1.0);
