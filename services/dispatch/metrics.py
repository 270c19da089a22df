"""Prometheus metrics of dispatch (module level: one registry per process, shared by replicas' code)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS_BY_STATUS = Gauge(
    "dispatch_requests", "Service requests by status, as last counted in the database", ["status"]
)
REQUESTS_OPENED = Counter("dispatch_requests_opened_total", "Requests opened", ["service", "source"])
PRESSES_JOINED = Counter(
    "dispatch_presses_joined_total", "Presses, calls or alerts that joined an open request", ["service"]
)
PRESSES_STUCK = Counter(
    "dispatch_presses_stuck_total", "Presses of a stuck button (homecare/buttons.py): urgency not raised", ["service"]
)
TRANSITIONS = Counter("dispatch_request_transitions_total", "Request state changes", ["to"])
OFFERS = Counter("dispatch_offers_total", "Offers by outcome", ["outcome"])
ESCALATIONS = Counter("dispatch_escalations_total", "Requests escalated to a dispatcher", ["service"])
PRESS_TO_ACK = Histogram(
    "dispatch_press_to_ack_seconds",
    "From the gateway receiving a press to the broker accepting the acknowledgement command",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
EVENTS = Counter("dispatch_events_total", "Internal messages consumed", ["type", "outcome"])
OUTBOX_PUBLISHED = Counter(
    "dispatch_outbox_published_total", "Commands published and acknowledged by the broker (PUBACK)", ["kind"]
)
AT_RISK = Counter("dispatch_at_risk_total", "Requests flagged at risk of missing their targets (rung 1)", ["service"])
PREEMPTIONS = Counter(
    "dispatch_preemptions_total", "Jobs handed back because their provider was called to an emergency", ["service"]
)
DELIVERY = Counter(
    "dispatch_command_delivery_total",
    "Commands to devices by the state they reached: sent (the broker took it), acknowledged, expired",
    ["state"],
)
PLAN_SOLVES = Counter(
    "dispatch_plan_solves_total",
    "Day-planning solves by outcome: written; stale (the day changed while it was solved: solved"
    " again); under_lock (the last try, solved holding the day's lock)",
    ["outcome"],
)
PLAN_SECONDS = Histogram(
    "dispatch_plan_run_seconds", "A day-planning run, from its first read to its routes written",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
COMMANDS_HELD = Gauge(
    "dispatch_commands_held", "Commands waiting for their device's first connection (no broker session yet)"
)
ACKS_REJECTED = Counter(
    "dispatch_acks_rejected_total", "Device acks of a command the device was not sent (told why on `errors`)"
)
