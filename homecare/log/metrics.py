"""Prometheus metrics of the internal log, labelled by durable consumer."""

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("homecare_log_published_total", "Messages stored in the log (publish acknowledged)", ["stream"])
PUBLISH_RETRIES = Counter("homecare_log_publish_retries_total", "Publishes tried again (no ack in time, or refused)")
PUBLISH_PENDING = Gauge("homecare_log_publish_pending", "Publishes waiting for the log's acknowledgement")
CONSUMED = Counter("homecare_log_consumed_total", "Messages a consumer finished", ["consumer", "outcome"])
LAG = Gauge("homecare_log_consumer_lag", "Messages in the stream not yet delivered to the consumer", ["consumer"])
ACK_PENDING = Gauge("homecare_log_consumer_ack_pending", "Messages delivered and not yet acknowledged", ["consumer"])
OLDEST_AGE = Gauge(
    "homecare_log_consumer_oldest_unacked_seconds",
    "Age of the oldest message the consumer has not acknowledged (0 when none)", ["consumer"],
)
STUCK_AFTER = Gauge(
    "homecare_log_consumer_stuck_after_seconds",
    "The consumer's limit: readiness fails, and the console raises an alert, while the oldest"
    " unacknowledged message is older", ["consumer"],
)
HANDLE_SECONDS = Histogram(
    "homecare_log_handle_seconds", "Time to handle one fetched batch (one message, with lanes)", ["consumer"]
)
WAIT_SECONDS = Histogram(
    "homecare_log_wait_seconds", "From the log storing a message to a consumer starting on it", ["consumer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DEAD_LETTERED = Counter("homecare_log_dead_lettered_total", "Messages put on the dead-letter stream", ["consumer"])
