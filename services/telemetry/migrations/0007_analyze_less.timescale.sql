-- Statistics when a table's rows have changed as many times as it has rows, not at a tenth
-- (autovacuum_analyze_scale_factor 0.1, the server's default). These tables change by updates of
-- the same rows (every device's last status, newest samples) or grow steadily (a day's samples,
-- the rollups): their statistics hardly move, but at 10,000 devices each of them was analyzed on
-- every one-minute autovacuum pass (server log with log_autovacuum_min_duration = 0, bench.load
-- 2026-12-03 diag 2), ~0.3 CPU s a pass together, and each analyze makes every connection plan
-- its prepared statements on that table again: a second of two busy cores when every press
-- waited longer. Vacuum thresholds are unchanged (dead rows still go every minute).
-- (TimescaleDB: the samples' chunks and the continuous aggregates keep the extension's settings.)

ALTER TABLE telemetry.latest_samples SET (autovacuum_analyze_scale_factor = 1.0);
ALTER TABLE telemetry.device_status SET (autovacuum_analyze_scale_factor = 1.0);
