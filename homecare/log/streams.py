"""The streams of the internal log: what each keeps, and for how long."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400.0


@dataclass(frozen=True)
class StreamSpec:
    """One JetStream stream: `<NS>_<name>`, holding every subject `<ns>.<token>.>`."""

    name: str
    token: str
    max_age_s: float

    def stream_name(self, namespace: str) -> str:
        return f"{namespace.upper()}_{self.name}"


# Retention by age (limits), not by interest: a message is kept for a consumer that does not
# exist yet (a service deployed after the gateway) or is down for days.
TELEMETRY = StreamSpec("TELEMETRY", "telemetry", 3 * DAY)
EVENTS = StreamSpec("EVENTS", "events", 30 * DAY)
STATE = StreamSpec("STATE", "state", 7 * DAY)
ACKS = StreamSpec("ACKS", "acks", 7 * DAY)
REQUESTS = StreamSpec("REQUESTS", "requests", 30 * DAY)
DEAD = StreamSpec("DEAD", "dead", 90 * DAY)  # messages consumers gave up on, for operators

ALL = (TELEMETRY, EVENTS, STATE, ACKS, REQUESTS, DEAD)
