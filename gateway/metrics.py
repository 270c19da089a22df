"""Prometheus metrics of the device edge (process-wide, like every prometheus_client metric)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "homecare_gateway_messages_total", "Device messages received, by channel.", ["channel"]
)
REJECTED = Counter(
    "homecare_gateway_rejected_total", "Device messages rejected, by reason code.", ["code"]
)
FORWARD_LATENCY = Histogram(
    "homecare_gateway_forward_latency_seconds",
    "From receipt of a device message to the broker's acknowledgement of its forward.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TELEMETRY_FLUSHES = Histogram(
    "homecare_gateway_telemetry_coalesced_batches",
    "Device batches coalesced into one internal telemetry message.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
THROTTLED = Counter(
    "homecare_gateway_throttled_total",
    "Device messages over their device's budget, by channel and outcome (dropped, or passed as news).",
    ["channel", "outcome"],
)
STATUS_BATCHES = Histogram(
    "homecare_gateway_status_batch_size",
    "Status messages applied in one transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
STATUS_WRITE = Histogram(
    "homecare_gateway_status_write_seconds",
    "Time to apply a batch of statuses: its transaction, announcements and acknowledgements.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OLDEST_UNACKED = Gauge(
    "homecare_gateway_oldest_unacked_seconds",
    "Age of the oldest device message an edge lane received and has not acknowledged, by lane;"
    " above stuck_after_s the gateway reports not ready.",
    ["lane"],
)
