"""Prometheus metrics of the telemetry service."""

from prometheus_client import Counter, Gauge, Histogram

SAMPLES_STORED = Counter(
    "homecare_telemetry_samples_stored", "Bed samples stored (new (device, ts) pairs)."
)
SAMPLES_DUPLICATE = Counter(
    "homecare_telemetry_samples_duplicates", "Bed samples received again and not stored twice."
)
MESSAGES_REJECTED = Counter(
    "homecare_telemetry_messages_rejected",
    "Internal messages dropped because they can never be stored.",
    ["topic", "reason"],
)
WRITE_ERRORS = Counter(
    "homecare_telemetry_write_errors", "Failed sample writes (retried; messages stay un-acked)."
)
WRITE_SECONDS = Histogram(
    "homecare_telemetry_write_seconds",
    "Time to COPY, insert and commit one batch of samples.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SAMPLES = Histogram(
    "homecare_telemetry_batch_samples",
    "Samples written per transaction.",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000),
)
FALLS_FORWARDED = Counter(
    "homecare_telemetry_falls_forwarded", "Suspected falls forwarded to dispatch as requests."
)
MINUTES_ANALYSED = Counter(
    "homecare_telemetry_minutes_analysed",
    "Touched bed-minutes whose rollups were recomputed and sample rules run.",
)
RULE_ERRORS = Counter(
    "homecare_telemetry_rule_errors", "Failed analysis steps (retried on the next round).", ["step"]
)
ALERT_MESSAGES = Counter(
    "homecare_telemetry_alert_messages",
    "Events and device states handled by the alert consumer.",
    ["topic", "outcome"],
)
# TimescaleDB's policy jobs (services/telemetry/store/jobs.py), read every job_check_s.
JOB_LAST_SUCCESS = Gauge(
    "homecare_telemetry_job_last_success_timestamp_seconds",
    "When a TimescaleDB policy job last succeeded (background or `homecare telemetry run-jobs`); 0: never.",
    ["job_id", "proc", "target"],
)
JOB_LAST_FAILURE = Gauge(
    "homecare_telemetry_job_last_failure_timestamp_seconds",
    "When a TimescaleDB policy job last failed; 0: never.",
    ["job_id", "proc", "target"],
)
JOB_PROBLEM = Gauge(
    "homecare_telemetry_job_problem",
    "1 while a policy job's last run failed or it has not succeeded for twice its interval.",
    ["job_id", "proc", "target"],
)
