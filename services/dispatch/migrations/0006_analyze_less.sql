-- The press path's tables: statistics when the rows have changed as many times as there are
-- rows, not at a tenth (see telemetry's 0007_analyze_less): at 10,000 devices each was analyzed on
-- every one-minute autovacuum pass, and every connection then planned its statements again.
ALTER TABLE dispatch.requests SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE dispatch.offers SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE dispatch.timeline SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE dispatch.outbox SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE dispatch.processed_events SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE dispatch.devices SET (autovacuum_analyze_scale_factor = 1.0);
